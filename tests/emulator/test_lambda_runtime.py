"""The moto patch: Lambda invocations reach real handler files, errors keep their type."""

import json
import os
import sys
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

    import PIL

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
            "pil_file": PIL.__file__,
            "first_path": sys.path[0],
            "greeting": greeting,
            "event": event,
        }
    """
)


@pytest.fixture
def asset_dir(tmp_path):
    """An asset folder like a bundled one: the handler, a sibling, and a foreign wheel."""
    (tmp_path / "handler.py").write_text(HANDLER)
    (tmp_path / "sibling.py").write_text('greeting = "hello"\n')
    (tmp_path / "PIL").mkdir()
    (tmp_path / "PIL" / "__init__.py").write_text('raise ImportError("arm64 wheel")\n')
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
    assert not result["pil_file"].startswith(str(asset_dir))
    assert result["first_path"] != str(asset_dir)
    assert "THRESHOLD" not in os.environ
    assert "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME" not in os.environ
    assert str(asset_dir) not in sys.path
    assert runtime.invocations[0].function_name == "classify"


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
