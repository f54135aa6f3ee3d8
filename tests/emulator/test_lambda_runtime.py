"""The moto patch: Lambda invocations reach real handler files in sandboxes of their own,
errors keep their type, and a handler imports only what its bundle holds."""

import json
import os
import textwrap

import boto3
import pytest
from moto import mock_aws

from emulator.errors import MotoPatchError
from emulator.lambda_runtime import (
    EXPECTED_INVOKE_PARAMETERS,
    FunctionCode,
    HandlerNotRegistered,
    LambdaRuntime,
    check_moto_compatibility,
)
from tests.emulator.emulator_fixtures import MOTO_CONFIG, create_function

HANDLER = textwrap.dedent(
    """
    import os
    import sys

    from sibling import greeting

    COLD_START_THRESHOLD = os.environ["THRESHOLD"]


    class LowConfidence(Exception):
        pass


    def lambda_handler(event, context):
        if event.get("fail"):
            raise LowConfidence(f"below {os.environ['THRESHOLD']}")
        return {
            "threshold": os.environ["THRESHOLD"],
            "cold_start_threshold": COLD_START_THRESHOLD,
            "endpoint_url": os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"),
            "function_name": context.function_name,
            "has_time_left": context.get_remaining_time_in_millis() > 0,
            "path": sys.path,
            "pid": os.getpid(),
            "greeting": greeting,
            "event": event,
        }
    """
)


@pytest.fixture
def asset_dir(tmp_path):
    """An asset folder like a bundled one: the handler and a sibling module."""
    (tmp_path / "handler.py").write_text(HANDLER)
    (tmp_path / "sibling.py").write_text('greeting = "hello"\n')
    return tmp_path


def test_moto_still_has_the_patch_point():
    """Fails loudly when a moto upgrade moves LambdaSimpleBackend.invoke."""
    from moto.awslambda.utils import get_backend
    from moto.awslambda_simple.models import LambdaSimpleBackend

    check_moto_compatibility()
    assert EXPECTED_INVOKE_PARAMETERS[1:] == (
        "function_name",
        "qualifier",
        "body",
        "headers",
        "response_headers",
    )
    with mock_aws(config=MOTO_CONFIG):
        assert isinstance(get_backend("123456789012", "us-east-1"), LambdaSimpleBackend)


def test_invoke_runs_the_handler_with_the_function_environment(asset_dir):
    overrides = {"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "http://127.0.0.1:1"}
    with mock_aws(config=MOTO_CONFIG), LambdaRuntime(overrides) as runtime:
        create_function("classify", {"THRESHOLD": "0.9"})
        runtime.register("classify", FunctionCode(asset_dir, "handler.lambda_handler"))
        response = boto3.client("lambda").invoke(
            FunctionName="classify", Payload=json.dumps({"s3_key": "incoming/a.png"})
        )
        result = json.loads(response["Payload"].read())
    assert "FunctionError" not in response
    assert result["threshold"] == result["cold_start_threshold"] == "0.9"
    assert result["endpoint_url"] == "http://127.0.0.1:1"
    assert result["function_name"] == "classify"
    assert result["has_time_left"]
    assert result["event"] == {"s3_key": "incoming/a.png"}
    assert result["greeting"] == "hello"
    assert result["pid"] != os.getpid()
    assert not any("site-packages" in entry for entry in result["path"])
    assert "THRESHOLD" not in os.environ
    assert runtime.invocations[0].function_name == "classify"


def test_a_package_the_bundle_lacks_is_an_import_error_even_if_the_venv_has_it(asset_dir):
    """numpy is in the dev venv, not in this bundle: the function cannot import it."""
    (asset_dir / "handler.py").write_text(
        "import numpy\n\n\ndef lambda_handler(event, context):\n    return 1\n"
    )
    with mock_aws(config=MOTO_CONFIG), LambdaRuntime() as runtime:
        create_function("serialize", {})
        runtime.register("serialize", FunctionCode(asset_dir, "handler.lambda_handler"))
        response = boto3.client("lambda").invoke(FunctionName="serialize", Payload=b"{}")
        payload = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert payload["errorMessage"] == ("Unable to import module 'handler': No module named 'numpy'")


def test_a_warm_sandbox_is_reused_and_keeps_its_module_state(asset_dir):
    with mock_aws(config=MOTO_CONFIG), LambdaRuntime() as runtime:
        create_function("classify", {"THRESHOLD": "0.9"})
        runtime.register("classify", FunctionCode(asset_dir, "handler.lambda_handler"))
        client = boto3.client("lambda")
        pids = {
            json.loads(client.invoke(FunctionName="classify", Payload=b"{}")["Payload"].read())[
                "pid"
            ]
            for _ in range(3)
        }
        assert len(pids) == 1
        assert runtime.cold_starts("classify") == 1


def test_a_handler_that_runs_past_its_timeout_is_stopped(tmp_path):
    (tmp_path / "handler.py").write_text(
        "import time\n\n\ndef lambda_handler(event, context):\n    time.sleep(30)\n"
    )
    with mock_aws(config=MOTO_CONFIG), LambdaRuntime() as runtime:
        create_function("slow", {})
        runtime.register(
            "slow", FunctionCode(tmp_path, "handler.lambda_handler", timeout_seconds=1)
        )
        response = boto3.client("lambda").invoke(FunctionName="slow", Payload=b"{}")
        payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"] == "Task timed out after 1.00 seconds"


def test_an_exception_is_the_runtime_error_envelope(asset_dir):
    with mock_aws(config=MOTO_CONFIG), LambdaRuntime() as runtime:
        create_function("filter", {"THRESHOLD": "0.95"})
        runtime.register("filter", FunctionCode(asset_dir, "handler.lambda_handler"))
        response = boto3.client("lambda").invoke(
            FunctionName="filter", Payload=json.dumps({"fail": True})
        )
        payload = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "LowConfidence"
    assert payload["errorMessage"] == "below 0.95"
    assert set(payload) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert any("handler.py" in line for line in payload["stackTrace"])


def test_registering_a_missing_handler_file_is_a_clear_error(tmp_path):
    with pytest.raises(HandlerNotRegistered, match="does not exist"):
        LambdaRuntime().register("f", FunctionCode(tmp_path, "handler.lambda_handler"))


def test_only_one_runtime_patches_moto_at_a_time():
    with LambdaRuntime(), pytest.raises(MotoPatchError, match="another"):
        LambdaRuntime().install()
