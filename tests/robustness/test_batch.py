"""Batch mode through the synthesized ``SconesBatch``: every item's own outcome, read back
from the results the batch wrote to S3, under bad input and an endpoint outage.

The model is untrained (seeded): a solid red image scores about 0.606 and seeded noise about
0.563, so ``THRESHOLD`` 0.595 makes the first classified and the second LowConfidence.
"""

import io
import json
from types import SimpleNamespace

import pytest
from PIL import Image

from emulator.batch import NOT_RUN, run_batch, start_batch, upload_batch
from emulator.distributed_map import EXCEEDED_ERROR
from emulator.endpoint import Fault
from emulator.errors import WorkflowError
from emulator.template import load_workflow
from tests.robustness import inputs
from tests.robustness.support import assembly_copy, running_workflow

pytestmark = pytest.mark.e2e


def solid_red(size: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (255, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def workflow(local_app):
    with running_workflow(local_app, THRESHOLD="0.595") as running:
        yield running


@pytest.fixture(autouse=True)
def healthy_endpoint_after_each_test(workflow):
    yield
    workflow.endpoint.clear_faults()


def by_name(run, keys):
    return {outcome.file: outcome for outcome in run.outcomes(keys)}


def test_a_mixed_prefix_records_every_items_own_outcome(workflow):
    items = [(f"red-{size}.png", solid_red(size)) for size in (32, 40, 64, 96)] + [
        ("notes.txt", b"not an image at all"),
        ("truncated.png", inputs.truncated_png()),
        ("noise.png", inputs.small_png(seed=0)),
    ]
    prefix, keys = upload_batch(workflow, items)
    run = run_batch(workflow, prefix)

    assert (run.status, run.map_run_status) == ("SUCCEEDED", "SUCCEEDED")
    assert run.item_counts["total"] == len(items)
    assert run.manifest["ResultFiles"]["PENDING"] == []
    outcomes = by_name(run, keys)
    for size in (32, 40, 64, 96):
        red = outcomes[f"red-{size}.png"]
        assert (red.status, red.label) == ("SUCCEEDED", "motorcycle"), red.cause
        assert red.confidence >= 0.595 and red.inferences[1] == red.confidence
    assert {name: outcomes[name].error for name in ("notes.txt", "truncated.png")} == {
        "notes.txt": "InvalidImage",
        "truncated.png": "InvalidImage",
    }
    unsure = outcomes["noise.png"]
    assert (unsure.status, unsure.error) == ("FAILED", "LowConfidence")
    assert json.loads(unsure.cause)["errorType"] == "LowConfidence"
    assert run.summary()["outcomes"] == {"InvalidImage": 2, "LowConfidence": 1, "SUCCEEDED": 4}
    assert all(key not in workflow.executions for key in keys)  # no upload event started one


def test_an_endpoint_outage_passes_the_tolerated_failures_and_keeps_what_was_done(workflow):
    """Three invocations answer, then the endpoint answers 503 until the test ends."""
    items = [(f"red-{n}.png", solid_red(32 + n)) for n in range(10)]
    prefix, keys = upload_batch(workflow, items)
    workflow.endpoint.inject(Fault.slow(0.0), times=3)
    workflow.endpoint.inject(Fault.service_unavailable(), times=None)
    run = run_batch(workflow, prefix)

    assert (run.status, run.error, run.map_run_status) == ("FAILED", EXCEEDED_ERROR, "FAILED")
    outcomes = run.outcomes(keys)
    statuses = [outcome.status for outcome in outcomes]
    assert statuses.count("SUCCEEDED") == 3
    assert all(o.label == "motorcycle" for o in outcomes if o.status == "SUCCEEDED")
    failed = [o for o in outcomes if o.status == "FAILED"]
    assert len(failed) >= 6  # more than 50 % of 10 items
    assert {o.error for o in failed} == {"EndpointError"}
    assert set(statuses) <= {"SUCCEEDED", "FAILED", NOT_RUN}
    assert (
        len(run.records)
        == len({r["Name"] for r in run.records})
        == statuses.count("SUCCEEDED") + len(failed)
    )


@pytest.mark.parametrize("emptied", [False, True], ids=["never-written", "all-deleted"])
def test_a_prefix_with_no_objects_ends_cleanly_as_a_batch_of_nothing(workflow, emptied):
    prefix = f"batch/nothing-{'deleted' if emptied else 'written'}/"
    if emptied:
        _, keys = upload_batch(workflow, [("gone.png", solid_red(32))], prefix=prefix)
        for key in keys:
            workflow.s3.delete_object(Bucket=workflow.bucket, Key=key)  # a delete marker
    run = run_batch(workflow, prefix)

    assert (run.status, run.map_run_status, run.item_counts["total"]) == (
        "SUCCEEDED",
        "SUCCEEDED",
        0,
    )
    assert run.manifest["ResultFiles"] == {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    assert run.summary()["items"] == 0


def test_a_prefix_outside_batch_is_refused_before_any_item(workflow):
    run = run_batch(workflow, "incoming/")
    assert (run.status, run.error, run.map_run_arn) == ("FAILED", "InvalidInput", None)


def test_the_spec_has_the_batch_machine_only_when_the_app_has_it(local_app, tmp_path):
    spec = load_workflow(local_app.outdir)
    assert spec.batch is not None and spec.batch.state_machine_arn != spec.state_machine_arn
    assert spec.batch.role_arn != spec.state_machine_role_arn
    assert "BatchClassifyRole" in spec.batch.role_arn
    assert len(spec.functions) == 3  # the batch's children invoke the workflow's functions

    outdir = assembly_copy(local_app.outdir, tmp_path / "cdk.out")
    manifest = json.loads((outdir / "manifest.json").read_text())
    del manifest["artifacts"]["SconesBatch"]
    (outdir / "manifest.json").write_text(json.dumps(manifest))
    without = load_workflow(outdir)
    assert without.batch is None
    with pytest.raises(WorkflowError, match="batch_mode=true"):
        start_batch(SimpleNamespace(spec=without), "batch/x/")
