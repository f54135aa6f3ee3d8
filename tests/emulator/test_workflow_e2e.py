"""End to end: the synthesized app, a briefly trained model, real images, offline."""

import base64
import json
import shutil
import subprocess
import sys

import pytest

from emulator.assembly import synthesize
from emulator.capture import read_capture_file
from emulator.endpoint import Fault
from emulator.sim_clock import SimClock, compressed_retry_waits
from emulator.workflow import LocalWorkflow
from stacks.constructs.classification_steps import ENDPOINT_RETRY_ATTEMPTS
from tests.emulator.emulator_fixtures import ARCHIVE, OUTCOME_FIELDS, REPO_ROOT

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


def test_an_endpoint_500_is_retried_briefly_then_a_persistent_one_is_an_endpoint_error(
    assembly, trained, images
):
    with (
        compressed_retry_waits(SimClock(20)),  # retries of at most 1 s each, 20x faster
        start(assembly, trained, environment={"THRESHOLD": "0.5"}) as workflow,
    ):
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
    # 1 attempt + the 4 brief retries of EndpointUnavailable, not the capacity retrier's 34:
    # a model's own 500 is not waited out for 15 minutes.
    assert classify_attempts == ["EndpointUnavailable"] * (1 + ENDPOINT_RETRY_ATTEMPTS)


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
    assert set(lines[0]) == OUTCOME_FIELDS
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


# The S3 event as deployed: keys as stored, the versioned bucket, at-least-once delivery.

# "red+flower" follows "red flower" with another image: decoding its key would read that one.
AWKWARD_KEYS = (
    "incoming/red flower.png",
    "incoming/red+flower.png",
    "incoming/c++ bike.png",
    "incoming/100% sure %41.png",
    "incoming/12:30:00 ride.png",
    "incoming/#1 bike?.png",
    "incoming/Ålesund sykkel é ø.png",
    "incoming/a%2Bb+c d.png",
)


def execution_output(workflow, outcome) -> dict:
    (succeeded,) = [
        e for e in workflow.history(outcome.execution_arn) if e["type"] == "ExecutionSucceeded"
    ]
    return json.loads(succeeded["executionSucceededEventDetails"]["output"])


def test_keys_with_spaces_plus_percent_colon_hash_and_letters_go_through(assembly, trained, images):
    paths = [path for label in CLASSES for path in images[label]]
    with start(assembly, trained, environment={"THRESHOLD": "0.5"}) as workflow:
        results = []
        for index, key in enumerate(AWKWARD_KEYS):
            path = paths[index % len(paths)]
            plain = workflow.classify(path, key=f"incoming/plain-{index}.png")
            awkward = workflow.classify(path, key=key)
            results.append((key, plain, awkward, execution_output(workflow, awkward)))
    for key, plain, awkward, output in results:
        assert awkward.status == "SUCCEEDED", awkward
        assert output["s3_key"] == key
        assert awkward.inferences == plain.inferences  # the object uploaded, not another one


def test_the_rule_pattern_from_the_template_starts_only_incoming_uploads(assembly, trained):
    from emulator.events import RulePattern

    keys = ("incoming/a.png", "data-capture/a.png", "incoming-not/a.png", "a.png")
    with start(assembly, trained) as workflow:
        pattern = workflow.spec.event_pattern
        started = {key: workflow.upload(b"not an image", key) for key in keys}
        (arn,) = started["incoming/a.png"]
        workflow.wait(arn, "incoming/a.png", None)
        event = workflow.delivered[arn]
    assert pattern["detail"]["object"] == {"key": [{"prefix": "incoming/"}]}
    assert {key: len(arns) for key, arns in started.items()} == {
        "incoming/a.png": 1,
        "data-capture/a.png": 0,
        "incoming-not/a.png": 0,
        "a.png": 0,
    }
    batch = {**event, "detail": {**event["detail"], "object": {"key": "batch/a.png"}}}
    batch_prefix = {"detail": {"object": {"key": [{"prefix": "batch/"}]}}}
    either = RulePattern({"$or": [pattern, batch_prefix]})
    assert either.matches(event) and either.matches(batch)
    assert not RulePattern(pattern).matches(batch)


def test_each_event_delivered_twice_gives_the_same_outcome_and_alters_nothing(
    assembly, trained, images
):
    """EventBridge delivers at least once: a duplicate is a second, identical execution."""
    import boto3

    uploads = [images["bicycle"][0], images["motorcycle"][0]]
    with start(assembly, trained, environment={"THRESHOLD": "0.5"}) as workflow:
        s3 = boto3.client("s3", region_name=workflow.region)
        sfn = boto3.client("stepfunctions", region_name=workflow.region)

        def redeliver(outcome):
            arn = workflow.deliver(workflow.delivered[outcome.execution_arn])
            return workflow.wait(arn, outcome.s3_key, None)

        keys = [f"incoming/twice-{index}.png" for index in range(len(uploads))]
        firsts = [workflow.classify(path, key=key) for path, key in zip(uploads, keys, strict=True)]
        duplicates = [redeliver(first) for first in firsts]
        # A duplicate arriving after an overwrite still classifies the version it names.
        overwrite = workflow.classify(uploads[1], key=keys[0])
        late = redeliver(firsts[0])

        versions = [
            s3.list_object_versions(Bucket=workflow.bucket, Prefix=key)["Versions"] for key in keys
        ]
        named = workflow.delivered[firsts[0].execution_arn]["detail"]["object"]["version-id"]
        named_body = s3.get_object(Bucket=workflow.bucket, Key=keys[0], VersionId=named)
        event_ids = [
            json.loads(sfn.describe_execution(executionArn=o.execution_arn)["input"])["id"]
            for o in (firsts[0], duplicates[0], late)
        ]
        capture_bucket = workflow.spec.capture.bucket
        captured = sum(
            len(workflow.read_object(capture_bucket, key).splitlines())
            for key in workflow.capture_keys()
        )
        first_bytes = named_body["Body"].read()
    for first, duplicate in zip(firsts, duplicates, strict=True):
        assert first.status == duplicate.status == "SUCCEEDED"
        assert duplicate.execution_arn != first.execution_arn
        assert (duplicate.label, duplicate.inferences) == (first.label, first.inferences)
    assert len(set(event_ids)) == 1  # one event id: what a consumer can deduplicate on
    assert (late.label, late.inferences) == (firsts[0].label, firsts[0].inferences)
    assert overwrite.inferences == firsts[1].inferences
    assert first_bytes == uploads[0].read_bytes()
    assert [len(v) for v in versions] == [2, 1]  # only the overwrite wrote a version
    # Every endpoint call is captured: each duplicate leaves one more capture record.
    assert captured == len(firsts) + len(duplicates) + 2
