"""Batch mode: a Distributed Map over an S3 prefix running the workflow's steps."""

import json

import pytest

from stacks.application import cdk_json_context
from stacks.batch_stack import EXPRESS_RETRY_MINUTES
from stacks.config import capacity_retry_attempts
from tests.stacks.support import (
    BATCH_STACK,
    only,
    resources,
    state_machine_definition,
    synthesize,
    write_record,
)


@pytest.fixture(scope="module")
def definition(synthesized):
    return state_machine_definition(synthesized.template(BATCH_STACK))


def test_batch_mode_is_on_by_default_and_can_be_turned_off(tmp_path):
    assert cdk_json_context()["batch_mode"] is True
    app = synthesize(tmp_path, model_record=str(write_record(tmp_path)), batch_mode="false")
    assert not (app.outdir / f"{BATCH_STACK}.template.json").exists()


def test_only_prefixes_under_batch_are_accepted(definition):
    assert definition["StartAt"] == "IsBatchPrefix"
    (choice,) = definition["States"]["IsBatchPrefix"]["Choices"]
    assert {"Variable": "$.prefix", "StringMatches": "batch/*"} in choice["And"]
    assert choice["Next"] == "ClassifyEachObject"
    invalid = definition["States"][definition["States"]["IsBatchPrefix"]["Default"]]
    assert invalid["Type"] == "Fail" and invalid["Error"] == "InvalidInput"


def test_distributed_map_lists_the_prefix_with_bounded_concurrency(definition):
    state = definition["States"]["ClassifyEachObject"]
    assert state["Type"] == "Map"
    assert state["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "EXPRESS",
    }
    assert state["MaxConcurrency"] == 10
    assert state["ToleratedFailurePercentage"] == 50
    reader = state["ItemReader"]
    assert reader["Resource"] == "arn:<AWS::Partition>:states:::s3:listObjectsV2"
    assert reader["Parameters"]["Prefix.$"] == "$.prefix"
    assert "SconesStorage" in reader["Parameters"]["Bucket"]
    assert state["ItemSelector"]["s3_key.$"] == "$$.Map.Item.Value.Key"
    assert "SconesStorage" in state["ItemSelector"]["s3_bucket"]


def test_results_are_written_to_s3(definition):
    writer = definition["States"]["ClassifyEachObject"]["ResultWriter"]
    assert writer["Resource"] == "arn:<AWS::Partition>:states:::s3:putObject"
    assert writer["Parameters"]["Prefix"] == "batch-results/"
    assert "SconesStorage" in writer["Parameters"]["Bucket"]
    # The map's own output is the results' location only, not every item's result.
    assert definition["States"]["ClassifyEachObject"]["ResultPath"] is None


def strip_attempts(retriers):
    return [{k: v for k, v in retrier.items() if k != "MaxAttempts"} for retrier in retriers]


def test_items_run_the_same_steps_as_the_workflow(synthesized, definition):
    workflow = state_machine_definition(synthesized.template("SconesWorkflow"))
    processor = definition["States"]["ClassifyEachObject"]["ItemProcessor"]
    assert processor["StartAt"] == workflow["StartAt"] == "SerializeImage"
    assert set(processor["States"]) == set(workflow["States"])
    for name, state in workflow["States"].items():
        if state["Type"] == "Task":
            # Same retries (but a capacity budget inside an Express child's 5 minutes) and
            # failure routes; the function ARN is a cross-stack reference.
            batch_state = processor["States"][name]
            assert strip_attempts(batch_state["Retry"]) == strip_attempts(state["Retry"])
            for retrier in batch_state["Retry"]:
                assert retrier["MaxAttempts"] <= capacity_retry_attempts(EXPRESS_RETRY_MINUTES)
            assert batch_state["Catch"] == state["Catch"]
            assert "SconesWorkflow" in batch_state["Resource"]
        else:
            assert processor["States"][name] == state


def test_concurrency_and_tolerance_come_from_context(tmp_path):
    app = synthesize(
        tmp_path,
        model_record=str(write_record(tmp_path)),
        batch_max_concurrency="5",
        batch_tolerated_failure_percentage="10",
    )
    state = state_machine_definition(app.template(BATCH_STACK))["States"]["ClassifyEachObject"]
    assert state["MaxConcurrency"] == 5
    assert state["ToleratedFailurePercentage"] == 10


def test_batch_role_lists_the_bucket_and_writes_with_its_key(synthesized):
    template = synthesized.template(BATCH_STACK)
    statements = [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = json.dumps([s["Action"] for s in statements])
    for action in (
        "s3:ListBucket",
        "s3:PutObject",
        "kms:GenerateDataKey*",
        "states:StartExecution",
    ):
        assert action in actions, action
    assert "s3:DeleteObject" not in actions


def test_serialize_may_read_batch_objects(synthesized):
    template = synthesized.template("SconesWorkflow")
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for logical_id, p in resources(template, "AWS::IAM::Policy").items()
        if logical_id.startswith("SerializeImageFunctionRole")
    ]
    (reads,) = [s for s in policy if "s3:GetObject*" in s["Action"]]
    suffixes = sorted(r["Fn::Join"][1][-1] for r in reads["Resource"] if "Fn::Join" in r)
    assert suffixes == ["/batch/*", "/incoming/*"]


def test_batch_state_machine_is_logged_traced_and_bounded(synthesized):
    template = synthesized.template(BATCH_STACK)
    properties = only(template, "AWS::StepFunctions::StateMachine")["Properties"]
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["LoggingConfiguration"]["Level"] == "ALL"
    assert state_machine_definition(template)["TimeoutSeconds"] == 24 * 3600
    (group,) = resources(template, "AWS::Logs::LogGroup").values()
    assert group["DeletionPolicy"] == "Delete"
