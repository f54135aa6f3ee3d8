"""What moto's Step Functions interpreter supports, checked on a small hand-written ASL."""

import json
import textwrap
import time
import uuid

import boto3
import pytest
from moto import mock_aws

from emulator.asl import (
    cached_interpreter_clients,
    cached_program_parsing,
    indexed_path_uses,
    is_cacheable,
    shorten_retry_waits,
)
from emulator.lambda_runtime import FunctionCode, LambdaRuntime
from tests.emulator.emulator_fixtures import MOTO_CONFIG, create_function

FLAKY = textwrap.dedent(
    """
    calls = {}


    class EndpointUnavailable(Exception):
        pass


    class EndpointError(Exception):
        pass


    def lambda_handler(event, context):
        key = event["run"]
        calls[key] = calls.get(key, 0) + 1
        if calls[key] <= event["transient_failures"]:
            raise EndpointUnavailable(f"attempt {calls[key]} throttled")
        if event.get("permanent"):
            raise EndpointError("endpoint is gone")
        return {"run": key, "attempts": calls[key]}
    """
)


def definition(function_arn, interval=2, max_delay=5):
    return {
        "StartAt": "Classify",
        "States": {
            "Classify": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Retry": [
                    {
                        "ErrorEquals": ["EndpointUnavailable"],
                        "IntervalSeconds": interval,
                        "MaxAttempts": 2,
                        "BackoffRate": 2.0,
                        "MaxDelaySeconds": max_delay,
                        "JitterStrategy": "FULL",
                    }
                ],
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}
                ],
                "End": True,
            },
            "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
        },
    }


@pytest.fixture
def machine(tmp_path):
    (tmp_path / "handler.py").write_text(FLAKY)
    with mock_aws(config=MOTO_CONFIG), LambdaRuntime() as runtime:
        arn = create_function("flaky", {})
        runtime.register("flaky", FunctionCode(tmp_path, "handler.lambda_handler"))
        sfn = boto3.client("stepfunctions")
        role = "arn:aws:iam::123456789012:role/sfn"

        def create(text):
            return sfn.create_state_machine(
                name=f"m-{uuid.uuid4().hex[:8]}", definition=text, roleArn=role
            )["stateMachineArn"]

        yield sfn, arn, create


def run(sfn, machine_arn, payload):
    started = time.monotonic()
    execution = sfn.start_execution(
        stateMachineArn=machine_arn, name=uuid.uuid4().hex, input=json.dumps(payload)
    )["executionArn"]
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        time.sleep(0.01)
    return described, time.monotonic() - started


def test_retry_then_success_and_catch_into_a_fail_state_with_paths(machine):
    sfn, function_arn, create = machine
    local = shorten_retry_waits(definition(function_arn))
    machine_arn = create(json.dumps(local))

    described, _ = run(sfn, machine_arn, {"run": "a", "transient_failures": 2})
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"run": "a", "attempts": 3}

    described, _ = run(sfn, machine_arn, {"run": "b", "transient_failures": 1, "permanent": True})
    assert described["status"] == "FAILED"
    assert described["error"] == "EndpointError"
    assert json.loads(described["cause"])["errorMessage"] == "endpoint is gone"

    described, _ = run(sfn, machine_arn, {"run": "c", "transient_failures": 5})
    assert described["error"] == "EndpointUnavailable"
    assert json.loads(described["cause"])["errorMessage"] == "attempt 3 throttled"


def test_retry_waits_are_real_sleeps_that_the_local_copy_shortens(machine):
    sfn, function_arn, create = machine
    original = definition(function_arn, interval=3, max_delay=3)
    local = shorten_retry_waits(original)
    assert original["States"]["Classify"]["Retry"][0]["IntervalSeconds"] == 3
    assert local["States"]["Classify"]["Retry"][0] == {
        **original["States"]["Classify"]["Retry"][0],
        "IntervalSeconds": 1,
        "MaxDelaySeconds": 1,
    }
    _, elapsed = run(sfn, create(json.dumps(local)), {"run": "d", "transient_failures": 2})
    assert elapsed < 2.5


def test_indexed_paths_are_wrong_in_moto_and_are_reported(machine):
    sfn, _, create = machine
    picking = {
        "StartAt": "Pick",
        "States": {
            "Pick": {"Type": "Pass", "Parameters": {"first.$": "$.items[0].b"}, "End": True}
        },
    }
    described, _ = run(sfn, create(json.dumps(picking)), {"items": [{"b": 1}]})
    assert json.loads(described["output"]) == {"first": [1]}, "moto fixed $.a[0].b?"
    assert indexed_path_uses(picking) == ["Pick.Parameters.first.$: $.items[0].b"]


def test_cached_programs_and_clients_keep_executions_apart(machine):
    sfn, function_arn, create = machine
    text = json.dumps(shorten_retry_waits(definition(function_arn)))
    assert is_cacheable(json.loads(text))
    machine_arn = create(text)
    keys = {"aws_access_key_id": "machine", "aws_secret_access_key": "role"}
    with cached_program_parsing({text}), cached_interpreter_clients(keys):
        outcomes = [
            run(sfn, machine_arn, {"run": f"cached-{n}", "transient_failures": 1})[0]
            for n in range(3)
        ]
    assert [json.loads(o["output"])["attempts"] for o in outcomes] == [2, 2, 2]
