"""End to end: the synthesized app, a briefly trained model, real images, offline."""

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.capture import read_capture_file
from emulator.endpoint import Fault
from emulator.workflow import LocalWorkflow, synthesize

REPO_ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = REPO_ROOT.parent / "shared" / "data" / "cifar-100-python-bicycle-motorcycle.tar.gz"
CLASSES = ("bicycle", "motorcycle")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not ARCHIVE.is_file(), reason=f"needs {ARCHIVE}"),
]


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A model trained for two epochs (assert outcomes, not accuracy) and its test images."""
    from training.train import train_local

    output = tmp_path_factory.mktemp("model")
    record = train_local(archive=ARCHIVE, output=output, epochs=2, num_threads=2)
    return record, output / "data" / "test"


@pytest.fixture(scope="session")
def assembly(trained, tmp_path_factory):
    record, _ = trained
    return synthesize(
        REPO_ROOT, tmp_path_factory.mktemp("cdk") / "cdk.out", {"model_record": str(record)}
    )


@pytest.fixture(scope="session")
def images(trained):
    _, test_dir = trained
    return {label: sorted((test_dir / label).glob("*.png"))[:3] for label in CLASSES}


def start(assembly, trained, **options):
    record, _ = trained
    return LocalWorkflow(assembly, record, **options)


def test_success_path(assembly, trained, images, tmp_path):
    with start(
        assembly, trained, environment={"THRESHOLD": "0.5"}, capture_dir=tmp_path
    ) as workflow:
        outcomes = [workflow.classify(path) for label in CLASSES for path in images[label]]
        capture_keys = workflow.capture_keys()
        captured = [
            record
            for key in capture_keys
            for record in map(
                json.loads,
                workflow.read_object(workflow.spec.capture.bucket, key).decode().splitlines(),
            )
        ]
    for outcome in outcomes:
        assert outcome.status == "SUCCEEDED", outcome
        assert outcome.label in CLASSES
        assert outcome.confidence == max(outcome.inferences)
        assert sum(outcome.inferences) == pytest.approx(1.0, abs=1e-3)
        assert outcome.s3_key.startswith("incoming/")

    # Data capture: one record per request, in the bucket and mirrored on disk.
    assert all(
        key.startswith("data-capture/SconesEndpoint-classifier/AllTraffic/") for key in capture_keys
    )
    assert len(captured) == len(outcomes)
    outputs = sorted(json.loads(r["captureData"]["endpointOutput"]["data"]) for r in captured)
    assert outputs == sorted(outcome.inferences for outcome in outcomes)
    for record in captured:
        assert record["captureData"]["endpointInput"]["observedContentType"] == "image/png"
        assert base64.b64decode(record["captureData"]["endpointInput"]["data"]).startswith(
            b"\x89PNG"
        )
    local = [r for path in sorted(tmp_path.rglob("*.jsonl")) for r in read_capture_file(path)]
    assert sorted(r["eventMetadata"]["eventId"] for r in local) == sorted(
        r["eventMetadata"]["eventId"] for r in captured
    )


def test_low_confidence_and_non_image_end_in_named_fail_states(assembly, trained, images):
    with start(assembly, trained, environment={"THRESHOLD": "1"}) as workflow:
        unsure = workflow.classify(images["bicycle"][0])
        text = workflow.classify_bytes(b"not an image at all", "incoming/notes.txt")
        fail_states = {
            outcome.error: [
                event["stateEnteredEventDetails"]["name"]
                for event in workflow.history(outcome.execution_arn)
                if event["type"] == "FailStateEntered"
            ]
            for outcome in (unsure, text)
        }
    assert unsure.status == "FAILED" and unsure.error == "LowConfidence"
    assert json.loads(unsure.cause)["errorType"] == "LowConfidence"
    assert text.status == "FAILED" and text.error == "InvalidImage"
    assert fail_states == {"LowConfidence": ["LowConfidence"], "InvalidImage": ["InvalidImage"]}


def test_an_endpoint_500_is_retried_then_a_dead_endpoint_is_an_endpoint_error(
    assembly, trained, images
):
    with start(assembly, trained, environment={"THRESHOLD": "0.5"}) as workflow:
        workflow.endpoint.inject(Fault.model_error(500), times=2)
        recovered = workflow.classify(images["motorcycle"][0])
        recovered_history = workflow.history(recovered.execution_arn)

        workflow.endpoint.inject(Fault.model_error(500), times=None)
        down = workflow.classify(images["motorcycle"][1])
        classify_attempts = [
            call.error_type
            for call in workflow.runtime.invocations
            if "ENDPOINT_NAME"
            in next(f.environment for f in workflow.spec.functions if f.name == call.function_name)
            and call.event.get("s3_key") == down.s3_key
        ]
    assert recovered.status == "SUCCEEDED"
    failures = [
        e["lambdaFunctionFailedEventDetails"]["error"]
        for e in recovered_history
        if e["type"] == "LambdaFunctionFailed"
    ]
    assert failures == ["EndpointUnavailable", "EndpointUnavailable"]

    assert down.status == "FAILED"
    assert down.error == "EndpointError"
    assert json.loads(down.cause)["errorType"] == "EndpointUnavailable"
    assert classify_attempts == ["EndpointUnavailable"] * 5  # 1 attempt + MaxAttempts 4


def test_the_definition_under_test_is_the_synthesized_one(assembly, trained, images, tmp_path):
    """Change a state in the synthesized template: the local workflow follows it."""
    edited = tmp_path / "cdk.out"
    edited.mkdir()
    for item in assembly.iterdir():
        if item.suffix == ".json":
            shutil.copy(item, edited / item.name)
        else:
            (edited / item.name).symlink_to(item)
    template_path = edited / "SconesWorkflow.template.json"
    template = json.loads(template_path.read_text())
    (machine,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    marker = '"LowConfidence":{"Type":"Fail","Error":"LowConfidence"'
    assert any(isinstance(p, str) and marker in p for p in parts)
    machine["Properties"]["DefinitionString"]["Fn::Join"][1] = [
        p.replace(marker, '"LowConfidence":{"Type":"Fail","Error":"NotSureEnough"')
        if isinstance(p, str)
        else p
        for p in parts
    ]
    template_path.write_text(json.dumps(template))

    with start(edited, trained, environment={"THRESHOLD": "1"}) as workflow:
        assert workflow.spec.definition["States"]["LowConfidence"]["Error"] == "NotSureEnough"
        outcome = workflow.classify(images["bicycle"][1])
    assert outcome.error == "NotSureEnough"


def test_the_classify_command(assembly, trained, images, tmp_path):
    record, _ = trained
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulator",
            "classify",
            "--model",
            str(record),
            "--cdk-out",
            str(assembly),
            "--capture-dir",
            str(tmp_path / "capture"),
            str(images["bicycle"][2]),
            str(text_file),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(images["bicycle"][2]), str(text_file)]
    assert set(lines[0]) == {
        "file",
        "s3_key",
        "status",
        "label",
        "confidence",
        "inferences",
        "error",
        "cause",
        "duration_ms",
    }
    assert lines[0]["status"] in ("SUCCEEDED", "FAILED")
    assert lines[1]["status"] == "FAILED" and lines[1]["error"] == "InvalidImage"
    assert list((tmp_path / "capture").rglob("*.jsonl"))


def test_the_demo_reuses_the_model_and_writes_its_report(trained, tmp_path):
    import io

    from emulator.demo import run_demo

    record, test_dir = trained
    out, log = io.StringIO(), io.StringIO()
    result = run_demo(
        archive=ARCHIVE,
        sample=4,
        seed=1,
        epochs=None,
        out=out,
        log=log,
        model_dir=record.parent,
        data_dir=test_dir.parent,
        report_root=tmp_path / "reports",
        assembly_cache=tmp_path / "assemblies",
    )
    assert "reusing" in log.getvalue()
    assert len(result.rows) == 4
    assert {truth for _, truth, _, _ in result.rows} == set(CLASSES)
    for name in ("confusion_matrix.png", "confidence_histogram.png", "outcomes.jsonl"):
        assert (result.report_dir / name).is_file()
    assert f"report: {result.report_dir}" in out.getvalue()
