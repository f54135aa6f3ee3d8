"""moto's Distributed Map (5.2.5) and what the local mode adds, on small hand-written ASL.

The children are Choice/Pass/Fail states (no Lambda), so a thousand items run in seconds.
"""

import json
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from emulator.asl import distributed_map_as_moto_parses
from emulator.distributed_map import EXCEEDED_ERROR, aws_distributed_map
from tests.emulator.emulator_fixtures import MOTO_CONFIG

BUCKET = "batch-bucket"
ROLE = "arn:aws:iam::123456789012:role/batch"


def batch_definition(execution_type="STANDARD", tolerated=None, concurrency=10):
    """A Distributed Map over ``$.prefix``: keys under ``bad/`` fail, the others succeed."""
    classify = {
        "Type": "Map",
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket": BUCKET, "Prefix.$": "$.prefix"},
        },
        "ItemSelector": {"key.$": "$$.Map.Item.Value.Key"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
            "StartAt": "Check",
            "States": {
                "Check": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.key", "StringMatches": "*/bad-*", "Next": "Bad"}],
                    "Default": "Good",
                },
                "Good": {"Type": "Pass", "Parameters": {"seen.$": "$.key"}, "End": True},
                "Bad": {"Type": "Fail", "Error": "InvalidImage", "Cause": "not an image"},
            },
        },
        "MaxConcurrency": concurrency,
        "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": BUCKET, "Prefix": "batch-results/"},
        },
        "ResultPath": None,
        "End": True,
    }
    if tolerated is not None:
        classify["ToleratedFailurePercentage"] = tolerated
    return {"StartAt": "ClassifyEach", "States": {"ClassifyEach": classify}}


@pytest.fixture
def moto():
    with mock_aws(config=MOTO_CONFIG):
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield boto3.client("stepfunctions", region_name="us-east-1"), s3


def execute(sfn, definition, prefix):
    """Run ``definition`` on ``prefix``; the execution described, and its map runs."""
    machine = sfn.create_state_machine(
        name=f"batch-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"prefix": prefix}))[
        "executionArn"
    ]
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        time.sleep(0.02)
    map_runs = sfn.list_map_runs(executionArn=arn)["mapRuns"]
    return described, [sfn.describe_map_run(mapRunArn=m["mapRunArn"]) for m in map_runs]


def run(sfn, definition, prefix):
    described, [map_run] = execute(sfn, definition, prefix)
    return described, map_run


def results(s3, map_run):
    folder = f"batch-results/{map_run['mapRunArn'].split(':')[-1]}/"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{folder}manifest.json")["Body"].read())
    files = {
        kind: [json.loads(s3.get_object(Bucket=BUCKET, Key=f["Key"])["Body"].read()) for f in found]
        for kind, found in manifest["ResultFiles"].items()
    }
    return manifest, files


def put(s3, keys):
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")


def test_moto_rejects_the_map_as_synthesized_and_parses_the_local_copy(moto):
    """Fails once moto parses EXPRESS children or an integer percentage: drop the rewrite."""
    sfn, _ = moto
    for original, what in (
        (batch_definition(execution_type="EXPRESS", tolerated=50.0), "EXPRESS"),
        (batch_definition(tolerated=50), "ToleratedFailurePercentage"),
    ):
        with pytest.raises(ClientError, match=what):
            sfn.create_state_machine(name="original", definition=json.dumps(original), roleArn=ROLE)
    synthesized = batch_definition(execution_type="EXPRESS", tolerated=50)
    local = distributed_map_as_moto_parses(synthesized)
    processor = local["States"]["ClassifyEach"]
    assert processor["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] == "STANDARD"
    assert processor["ToleratedFailurePercentage"] == 50.0
    assert synthesized["States"]["ClassifyEach"]["ToleratedFailurePercentage"] == 50
    sfn.create_state_machine(name="local", definition=json.dumps(local), roleArn=ROLE)


def test_moto_alone_reads_one_page_and_writes_no_result_files(moto):
    """The gaps ``aws_distributed_map`` fills (fails once moto fills them itself)."""
    sfn, s3 = moto
    put(s3, [f"batch/big/{n:04d}.png" for n in range(1001)])
    described, map_run = run(sfn, batch_definition(), "batch/big/")
    assert described["status"] == "SUCCEEDED"
    assert map_run["itemCounts"]["total"] == 1000
    manifest, _ = results(s3, map_run)
    assert manifest["ResultFiles"] == {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    described, _ = execute(sfn, batch_definition(), "batch/none/")
    assert (described["status"], described["error"]) == ("FAILED", "States.Runtime")
    assert described["cause"].endswith("'Contents'")  # a KeyError: no objects, no Contents


def test_every_page_is_read_and_every_item_has_its_record(moto):
    sfn, s3 = moto
    keys = [f"batch/big/{n:04d}.png" for n in range(1001)] + ["batch/big/bad-1.txt"]
    put(s3, keys)
    with aws_distributed_map():
        described, map_run = run(sfn, batch_definition(tolerated=50.0), "batch/big/")
    assert described["status"] == "SUCCEEDED"
    manifest, files = results(s3, map_run)
    assert manifest["DestinationBucket"] == BUCKET
    assert manifest["MapRunArn"] == map_run["mapRunArn"]
    folder = f"batch-results/{map_run['mapRunArn'].split(':')[-1]}/"
    for kind in ("SUCCEEDED", "FAILED"):
        [listed] = manifest["ResultFiles"][kind]
        body = s3.get_object(Bucket=BUCKET, Key=listed["Key"])["Body"].read()
        assert (listed["Key"], listed["Size"]) == (f"{folder}{kind}_0.json", len(body))
    assert manifest["ResultFiles"]["PENDING"] == []
    [succeeded], [failed] = files["SUCCEEDED"], files["FAILED"]
    assert sorted(json.loads(r["Input"])["key"] for r in succeeded + failed) == sorted(keys)
    assert {json.loads(r["Output"])["seen"] for r in succeeded} == set(keys) - {keys[-1]}
    [bad] = failed
    assert (bad["Status"], bad["Error"], bad["Cause"]) == ("FAILED", "InvalidImage", "not an image")
    record = succeeded[0]
    assert set(record) == {
        "ExecutionArn",
        "Input",
        "InputDetails",
        "Name",
        "Output",
        "OutputDetails",
        "RedriveCount",
        "RedriveStatus",
        "RedriveStatusReason",
        "StartDate",
        "StateMachineArn",
        "Status",
        "StopDate",
    }
    assert record["ExecutionArn"].endswith(f":{record['Name']}")
    assert len({r["Name"] for r in succeeded + failed}) == len(keys)


def test_too_many_failures_fail_the_map_run_and_keep_what_ran(moto):
    sfn, s3 = moto
    good = ["batch/mixed/a-0.png", "batch/mixed/a-1.png"]
    bad = [f"batch/mixed/bad-{n}.txt" for n in range(8)]
    put(s3, good + bad)  # listed in key order: the two good ones first
    with aws_distributed_map():
        described, map_run = run(
            sfn, batch_definition(tolerated=50.0, concurrency=1), "batch/mixed/"
        )
    assert (described["status"], described["error"]) == ("FAILED", EXCEEDED_ERROR)
    assert "6 of the map run's 10 items failed" in described["cause"]
    assert map_run["status"] == "FAILED"
    _, files = results(s3, map_run)
    [succeeded], [failed] = files["SUCCEEDED"], files["FAILED"]
    assert [json.loads(r["Input"])["key"] for r in succeeded] == good
    assert [json.loads(r["Input"])["key"] for r in failed] == bad[:6]


def test_a_prefix_with_no_objects_is_a_batch_of_nothing(moto):
    sfn, s3 = moto
    with aws_distributed_map():
        described, map_run = run(sfn, batch_definition(tolerated=50.0), "batch/never-written/")
    assert described["status"] == "SUCCEEDED"
    assert (map_run["status"], map_run["itemCounts"]["total"]) == ("SUCCEEDED", 0)
    manifest, _ = results(s3, map_run)
    assert manifest["ResultFiles"] == {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
