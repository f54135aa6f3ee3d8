import json

from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Match, Template

from stacks.application import REPO_ROOT
from stacks.config import classify_concurrency_for
from stacks.constructs.classification_steps import (
    FAILURE_KINDS,
    FAILURES_BY_STEP,
    classification_chain,
)
from tests.stacks.support import only, resources, state_machine_definition

HANDLER_ERRORS = {error for errors in FAILURE_KINDS.values() for error in errors}
TRANSIENT_ENDPOINT_ERRORS = {"EndpointBusy", "EndpointUnavailable"}


def functions(template):
    return {
        logical_id.removesuffix(logical_id[-8:]): fn["Properties"]
        for logical_id, fn in resources(template, "AWS::Lambda::Function").items()
    }


def policy_of(template, prefix):
    (policy,) = [
        p
        for logical_id, p in resources(template, "AWS::IAM::Policy").items()
        if logical_id.startswith(prefix)
    ]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_three_python_arm64_traced_functions(synthesized):
    found = functions(synthesized.template("SconesWorkflow"))
    assert set(found) == {
        "SerializeImageFunction",
        "ClassifyImageFunction",
        "FilterInferencesFunction",
    }
    for properties in found.values():
        assert properties["Runtime"] == "python3.12"
        assert properties["Architectures"] == ["arm64"]
        assert properties["Handler"] == "handler.lambda_handler"
        assert properties["TracingConfig"] == {"Mode": "Active"}
        assert properties["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]


def test_function_environments(synthesized):
    found = functions(synthesized.template("SconesWorkflow"))
    classify = found["ClassifyImageFunction"]["Environment"]["Variables"]
    assert classify["ENDPOINT_NAME"]["Fn::GetStackOutput"]["StackName"] == "SconesEndpoint"
    assert classify["CLASS_NAMES"] == "bicycle,motorcycle"
    filter_ = found["FilterInferencesFunction"]["Environment"]["Variables"]
    assert (filter_["THRESHOLD"], filter_["CLASS_NAMES"]) == ("0.75", "bicycle,motorcycle")
    assert "CLASS_NAMES" not in found["SerializeImageFunction"]["Environment"]["Variables"]


def test_the_class_names_come_from_the_model_record(tmp_path):
    from tests.stacks.support import synthesize, write_record

    record = write_record(tmp_path, class_names=["road", "mountain", "cargo"])
    app = synthesize(tmp_path, model_record=str(record))
    workflow = functions(app.template("SconesWorkflow"))
    monitoring = functions(app.template("SconesMonitoring"))
    for properties in (
        workflow["ClassifyImageFunction"],
        workflow["FilterInferencesFunction"],
        monitoring["DriftMonitorFunction"],
    ):
        assert properties["Environment"]["Variables"]["CLASS_NAMES"] == "road,mountain,cargo"


def test_threshold_comes_from_context(tmp_path):
    from tests.stacks.support import synthesize, write_record

    app = synthesize(
        tmp_path, model_record=str(write_record(tmp_path)), confidence_threshold="0.97"
    )
    found = functions(app.template("SconesWorkflow"))
    assert found["FilterInferencesFunction"]["Environment"]["Variables"]["THRESHOLD"] == "0.97"


def test_least_privilege_grants(synthesized):
    template = synthesized.template("SconesWorkflow")
    serialize = policy_of(template, "SerializeImageFunctionRole")
    s3_reads = [s for s in serialize if "s3:GetObject*" in s["Action"]]
    assert len(s3_reads) == 1
    bucket_arn, *objects = s3_reads[0]["Resource"]
    assert "Fn::GetStackOutput" in bucket_arn
    # incoming/ for the workflow; batch/ because the shared synthesis turns batch mode on.
    assert sorted(o["Fn::Join"][1][-1] for o in objects) == ["/batch/*", "/incoming/*"]
    assert not any(
        "s3:Put" in json.dumps(s["Action"]) or "s3:Delete" in json.dumps(s["Action"])
        for s in serialize
    )

    classify = policy_of(template, "ClassifyImageFunctionRole")
    invoke = [s for s in classify if s["Action"] == "sagemaker:InvokeEndpoint"]
    assert len(invoke) == 1
    assert invoke[0]["Resource"]["Fn::GetStackOutput"]["StackName"] == "SconesEndpoint"
    assert not any("s3:" in json.dumps(s["Action"]) for s in classify)

    filter_ = policy_of(template, "FilterInferencesFunctionRole")
    assert not any(
        a.startswith(("s3:", "sagemaker:", "kms:"))
        for s in filter_
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    )


def test_steps_run_serialize_classify_filter(synthesized):
    definition = state_machine_definition(synthesized.template("SconesWorkflow"))
    states = definition["States"]
    assert definition["StartAt"] == "SerializeImage"
    assert states["SerializeImage"]["Next"] == "ClassifyImage"
    assert states["ClassifyImage"]["Next"] == "FilterInferences"
    assert states["FilterInferences"]["Next"] == "Classified"
    assert states["Classified"]["Type"] == "Succeed"
    assert "SerializeImageFunction" in states["SerializeImage"]["Resource"]


def test_only_transient_errors_are_retried_with_backoff_and_jitter(synthesized):
    states = state_machine_definition(synthesized.template("SconesWorkflow"))["States"]
    for name in ("SerializeImage", "ClassifyImage", "FilterInferences"):
        for retry in states[name]["Retry"]:
            assert retry["JitterStrategy"] == "FULL"
            assert retry["BackoffRate"] >= 2
            assert not set(retry["ErrorEquals"]) & (HANDLER_ERRORS - TRANSIENT_ENDPOINT_ERRORS)
            assert "States.ALL" not in retry["ErrorEquals"]
    for error in TRANSIENT_ENDPOINT_ERRORS:
        (endpoint_retry,) = [
            r for r in states["ClassifyImage"]["Retry"] if error in r["ErrorEquals"]
        ]
        assert endpoint_retry["MaxAttempts"] >= 3 and endpoint_retry["MaxDelaySeconds"] <= 60


def test_each_failure_kind_ends_in_a_fail_state_named_after_it(synthesized):
    states = state_machine_definition(synthesized.template("SconesWorkflow"))["States"]
    routes = {}
    for name in ("SerializeImage", "ClassifyImage", "FilterInferences"):
        catches = states[name]["Catch"]
        assert catches[-1]["ErrorEquals"] == ["States.ALL"]
        assert all(c["ResultPath"] == "$.error" for c in catches)
        routes.update({error: c["Next"] for c in catches for error in c["ErrorEquals"]})
    assert routes["LowConfidence"] == "LowConfidence"
    assert routes["EndpointUnavailable"] == routes["EndpointBusy"] == "EndpointError"
    assert routes["InvalidImage"] == "InvalidImage"
    assert routes["ImageNotFound"] == "ImageNotFound"
    for kind in FAILURE_KINDS:
        assert states[kind] == {"Type": "Fail", "Error": kind, "CausePath": "$.error.Cause"}
    assert states["UnexpectedError"] == {
        "Type": "Fail",
        "ErrorPath": "$.error.Error",
        "CausePath": "$.error.Cause",
    }


def test_state_machine_is_standard_logged_traced_and_bounded(synthesized):
    template = synthesized.template("SconesWorkflow")
    properties = only(template, "AWS::StepFunctions::StateMachine")["Properties"]
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["LoggingConfiguration"]["Level"] == "ALL"
    assert state_machine_definition(template)["TimeoutSeconds"] == 1200


def test_rule_starts_the_workflow_for_incoming_objects(synthesized):
    template = Template.from_stack(synthesized.stack("SconesWorkflow"))
    rule = only(synthesized.template("SconesWorkflow"), "AWS::Events::Rule")["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"] == {"key": [{"prefix": "incoming/"}]}
    (bucket_name,) = pattern["detail"]["bucket"]["name"]
    assert bucket_name["Fn::GetStackOutput"]["StackName"] == "SconesStorage"
    (target,) = rule["Targets"]
    assert "ClassifyWorkflow" in json.dumps(target["Arn"])
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 10
    assert "UndeliveredEvents" in json.dumps(target["DeadLetterConfig"])
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "KmsMasterKeyId": {
                "Fn::GetAtt": [Match.string_like_regexp("^UndeliveredEventsKey"), "Arn"]
            }
        },
    )


def test_the_undelivered_events_key_admits_eventbridge_for_this_account_only(synthesized):
    key = only(synthesized.template("SconesWorkflow"), "AWS::KMS::Key")["Properties"]
    assert key["EnableKeyRotation"] is True
    (events,) = [
        s
        for s in key["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    assert sorted(events["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert events["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source = json.dumps(events["Condition"]["ArnLike"]["aws:SourceArn"])
    assert '":events:"' in source and '":rule/*"' in source


def test_classify_concurrency_is_reserved_to_what_the_endpoint_serves(synthesized):
    found = functions(synthesized.template("SconesWorkflow"))
    # cdk.json: autoscaling_max_capacity 4, 300 invocations per instance-minute.
    assert found["ClassifyImageFunction"]["ReservedConcurrentExecutions"] == 10
    assert classify_concurrency_for(4, 300) == 10
    for name in ("SerializeImageFunction", "FilterInferencesFunction"):
        assert "ReservedConcurrentExecutions" not in found[name]


def mean_full_jitter_wait(retrier):
    """Seconds a retrier waits in all, on average: full jitter halves each backoff."""
    return sum(
        min(retrier["IntervalSeconds"] * retrier["BackoffRate"] ** n, retrier["MaxDelaySeconds"])
        / 2
        for n in range(retrier["MaxAttempts"])
    )


def test_capacity_errors_wait_out_a_scale_out_and_permanent_ones_fail_at_once(synthesized):
    states = state_machine_definition(synthesized.template("SconesWorkflow"))["States"]
    # Step Functions takes the first matching retrier: the capacity one must come first.
    first, endpoint, generic = states["ClassifyImage"]["Retry"]
    assert first["ErrorEquals"] == ["Lambda.TooManyRequestsException", "EndpointBusy"]
    assert first["JitterStrategy"] == "FULL"
    assert endpoint["ErrorEquals"] == ["EndpointUnavailable"]
    assert "Lambda.TooManyRequestsException" in generic["ErrorEquals"]
    # Autoscaling from one instance to four: (3-minute alarm + 5-minute start-up) + (1-minute
    # cooldown + 5-minute start-up) = 14 minutes; the budget is 15 (cdk.json leaves it derived).
    assert 14 * 60 <= mean_full_jitter_wait(first) <= 16 * 60
    # ... and the execution outlives it (the settings check the timeout against it).
    timeout = state_machine_definition(synthesized.template("SconesWorkflow"))["TimeoutSeconds"]
    assert timeout > 15 * 60
    # Permanent endpoint failures (4xx, malformed answers) are not retried at all.
    for retrier in states["ClassifyImage"]["Retry"]:
        assert "EndpointError" not in retrier["ErrorEquals"]
        assert "InvalidInput" not in retrier["ErrorEquals"]


def test_a_model_500_is_retried_briefly_and_only_capacity_waits_for_a_scale_out(synthesized):
    """EndpointUnavailable (a model's own 5xx, InternalFailure, a dead endpoint) gets a few
    quick retries, as before the capacity retrier; EndpointBusy (throttling, 429, 503,
    timeouts) gets the 15-minute one. Neither error is in the other's retrier."""
    retriers = state_machine_definition(synthesized.template("SconesWorkflow"))["States"][
        "ClassifyImage"
    ]["Retry"]
    (unavailable,) = [r for r in retriers if "EndpointUnavailable" in r["ErrorEquals"]]
    (busy,) = [r for r in retriers if "EndpointBusy" in r["ErrorEquals"]]
    assert unavailable is not busy
    assert unavailable == {
        "ErrorEquals": ["EndpointUnavailable"],
        "IntervalSeconds": 2,
        "MaxAttempts": 4,
        "BackoffRate": 2,
        "MaxDelaySeconds": 20,
        "JitterStrategy": "FULL",
    }
    assert mean_full_jitter_wait(unavailable) == 15  # seconds: 1 + 2 + 4 + 8
    assert mean_full_jitter_wait(busy) >= 14 * 60
    assert retriers.index(busy) < retriers.index(unavailable)


def test_the_capacity_budget_follows_its_setting():
    stack = Stack(App(), "Chain")
    functions = {
        name: lambda_.Function(
            stack,
            f"{name}Function",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context): return event"),
        )
        for name in FAILURES_BY_STEP
    }
    chain = classification_chain(stack, functions, capacity_retry_minutes=5)
    sfn.StateMachine(stack, "Machine", definition_body=sfn.DefinitionBody.from_chainable(chain))
    definition = state_machine_definition(Template.from_stack(stack).to_json())
    first, endpoint, _ = definition["States"]["ClassifyImage"]["Retry"]
    assert first["ErrorEquals"] == ["Lambda.TooManyRequestsException", "EndpointBusy"]
    assert 5 * 60 <= mean_full_jitter_wait(first) < 6 * 60
    # The brief retrier of EndpointUnavailable does not follow the capacity budget.
    assert endpoint["MaxAttempts"] == 4 and mean_full_jitter_wait(endpoint) == 15


def test_serialize_bundle_holds_arm64_pillow_and_the_handler(synthesized):
    template = synthesized.template("SconesWorkflow")
    (serialize,) = [
        fn
        for logical_id, fn in resources(template, "AWS::Lambda::Function").items()
        if logical_id.startswith("SerializeImage")
    ]
    bundle = synthesized.outdir / serialize["Metadata"]["aws:asset:path"]
    source = REPO_ROOT / "lambda_src" / "serialize_image" / "handler.py"
    assert (bundle / "handler.py").read_text() == source.read_text()
    extensions = [p.name for p in (bundle / "PIL").glob("_imaging*.so")]
    assert extensions and all("aarch64" in name for name in extensions)
    assert (bundle / "aws_lambda_powertools").is_dir()
    # The Lambda runtime provides the AWS SDK: the bundle does not ship another copy.
    assert not (bundle / "botocore").exists()
