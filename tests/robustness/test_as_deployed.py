"""As deployed: each function runs as its own role, from its own bundle, and moto enforces IAM.

Each test edits a copy of the synthesized assembly the way a defect would (a grant dropped
from a role, a package dropped from a bundle) and shows the execution ends in a named failure
that says what is wrong, not a hang or a crash.
"""

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.robustness import inputs
from tests.robustness.support import assembly_copy, put, resource_of_type, running_workflow

pytestmark = pytest.mark.e2e
WORKFLOW_TEMPLATE = "SconesWorkflow.template.json"


def without_serialize_read(app, tmp_path: Path, prefix: str) -> Path:
    """A copy of ``app``'s assembly in which serialize's role may not read ``prefix``."""
    outdir = assembly_copy(app.outdir, tmp_path / "cdk.out")
    template = json.loads((outdir / WORKFLOW_TEMPLATE).read_text())
    _, policy = resource_of_type(template, "AWS::IAM::Policy", "SerializeImageFunctionRole")
    (read,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if "s3:GetObject*" in s["Action"]
    ]
    kept = [r for r in read["Resource"] if f"/{prefix}*" not in json.dumps(r)]
    assert len(kept) == len(read["Resource"]) - 1
    read["Resource"] = kept
    (outdir / WORKFLOW_TEMPLATE).write_text(json.dumps(template))
    return outdir


def test_every_function_runs_as_its_own_role_and_access_control_is_on(local_app):
    with running_workflow(local_app, THRESHOLD="0.5") as workflow:
        from moto import settings

        assert settings.INITIAL_NO_AUTH_ACTION_COUNT == 0
        roles = {function.name: function.role_arn for function in workflow.spec.functions}
        assert len(set(roles.values())) == len(roles) == 3
        key = "incoming/as-deployed/allowed.png"
        _, execution = put(workflow, inputs.small_png(seed=3), key)
        outcome = workflow.wait(execution, key, None)
    assert outcome.status == "SUCCEEDED", outcome.cause


def test_a_grant_removed_from_the_template_fails_the_execution_as_access_denied(
    local_app, tmp_path
):
    outdir = without_serialize_read(local_app, tmp_path, "incoming/")

    with running_workflow(SimpleNamespace(outdir=outdir), THRESHOLD="0.5") as workflow:
        key = "incoming/as-deployed/denied.png"
        _, execution = put(workflow, inputs.small_png(seed=4), key)
        outcome = workflow.wait(execution, key, None)
        body = workflow.read_object(workflow.bucket, key)

    assert outcome.status == "FAILED" and outcome.error == "AccessDenied"
    cause = json.loads(outcome.cause)
    assert cause["errorType"] == "AccessDenied"
    assert cause["errorMessage"].startswith("access denied: S3 refused HeadObject of s3://")
    assert body == inputs.small_png(seed=4)  # the upload is kept


def test_the_endpoint_refuses_a_role_without_invoke_endpoint(local_app, tmp_path):
    outdir = assembly_copy(local_app.outdir, tmp_path / "cdk.out")
    template = json.loads((outdir / WORKFLOW_TEMPLATE).read_text())
    _, policy = resource_of_type(template, "AWS::IAM::Policy", "ClassifyImageFunctionRole")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    statements[:] = [s for s in statements if s["Action"] != "sagemaker:InvokeEndpoint"]
    (outdir / WORKFLOW_TEMPLATE).write_text(json.dumps(template))

    with running_workflow(SimpleNamespace(outdir=outdir), THRESHOLD="0.5") as workflow:
        key = "incoming/as-deployed/no-invoke.png"
        _, execution = put(workflow, inputs.small_png(seed=5), key)
        outcome = workflow.wait(execution, key, None)

    assert outcome.status == "FAILED" and outcome.error == "EndpointError"
    assert "sagemaker:InvokeEndpoint" in json.loads(outcome.cause)["errorMessage"]


def test_a_package_missing_from_a_bundle_fails_the_import_as_in_lambda(local_app, tmp_path):
    """Pillow dropped from the serialize bundle: the dev venv's Pillow must not stand in."""
    outdir = assembly_copy(local_app.outdir, tmp_path / "cdk.out")
    template = json.loads((outdir / WORKFLOW_TEMPLATE).read_text())
    _, function = resource_of_type(template, "AWS::Lambda::Function", "SerializeImageFunction")
    asset = outdir / function["Metadata"]["aws:asset:path"]
    trimmed = tmp_path / "asset.serialize-without-pillow"
    shutil.copytree(asset.resolve(), trimmed, copy_function=os.link)
    for entry in [trimmed / "PIL", *trimmed.glob("pillow-*.dist-info"), trimmed / "pillow.libs"]:
        shutil.rmtree(entry, ignore_errors=True)
    asset.unlink()
    asset.symlink_to(trimmed)

    with running_workflow(SimpleNamespace(outdir=outdir), THRESHOLD="0.5") as workflow:
        key = "incoming/as-deployed/no-pillow.png"
        _, execution = put(workflow, inputs.small_png(seed=6), key)
        outcome = workflow.wait(execution, key, None)

    assert outcome.status == "FAILED" and outcome.error == "Runtime.ImportModuleError"
    assert json.loads(outcome.cause)["errorMessage"] == (
        "Unable to import module 'handler': No module named 'PIL'"
    )


BATCH_TEMPLATE = "SconesBatch.template.json"


def without_batch_grant(local_app, tmp_path, keep):
    """A copy of the assembly whose batch role keeps only the statements ``keep`` accepts."""
    outdir = assembly_copy(local_app.outdir, tmp_path / "cdk.out")
    template = json.loads((outdir / BATCH_TEMPLATE).read_text())
    _, policy = resource_of_type(template, "AWS::IAM::Policy", "BatchClassifyRoleDefaultPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    kept = [s for s in statements if keep(s)]
    assert len(kept) == len(statements) - 1
    statements[:] = kept
    (outdir / BATCH_TEMPLATE).write_text(json.dumps(template))
    return SimpleNamespace(outdir=outdir)


def run_a_batch(app, names):
    from emulator.batch import run_batch, upload_batch

    with running_workflow(app, THRESHOLD="0.5") as workflow:
        items = [(name, inputs.small_png(seed=n)) for n, name in enumerate(names)]
        prefix, keys = upload_batch(workflow, items, prefix="batch/as-deployed/")
        run = run_batch(workflow, prefix)
        return run, run.outcomes(keys)


def test_the_batch_item_reader_lists_the_prefix_as_the_batch_role(local_app, tmp_path):
    app = without_batch_grant(local_app, tmp_path, lambda s: s["Action"] != "s3:ListBucket")
    run, outcomes = run_a_batch(app, ["listed.png"])
    assert (run.status, run.error) == ("FAILED", "States.Runtime")
    assert "AccessDenied" in run.cause and "ListObjectsV2" in run.cause
    assert [o.status for o in outcomes] == ["NOT_RUN"]


def test_the_batch_result_writer_puts_the_results_as_the_batch_role(local_app, tmp_path):
    app = without_batch_grant(local_app, tmp_path, lambda s: "s3:PutObject" not in s["Action"])
    run, _ = run_a_batch(app, [])  # no item: the manifest alone needs s3:PutObject
    assert (run.status, run.error) == ("FAILED", "States.Runtime")
    assert "AccessDenied" in run.cause and "PutObject" in run.cause
    assert run.manifest is None


def test_batch_children_invoke_the_functions_that_run_as_their_own_roles(local_app, tmp_path):
    """serialize reads batch/* only by the grant the batch stack adds to its role."""
    outdir = without_serialize_read(local_app, tmp_path, "batch/")
    run, [outcome] = run_a_batch(SimpleNamespace(outdir=outdir), ["unreadable.png"])
    assert (run.status, run.map_run_status) == ("FAILED", "FAILED")  # 1 of 1 failed > 50 %
    assert (outcome.status, outcome.error) == ("FAILED", "AccessDenied")
    assert "HeadObject" in json.loads(outcome.cause)["errorMessage"]
