"""Fixtures for the Lambda handler tests: a Lambda context, moto S3, a wire-level fake
SageMaker endpoint, generated images and a reader for the EMF metrics the handlers print."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from PIL import Image

# xray_daemon is autouse: every test here runs traced, against the loopback listener.
from tests.xray_support import import_in_lambda, xray_daemon, xray_listener  # noqa: F401

# `pytest` (unlike `python -m pytest`) does not put the repository root on sys.path, and the
# handlers are imported as `lambda_src.<function>.handler` from there.
REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

BUCKET = "scones-images"
ENDPOINT_NAME = "scones-classifier"
# The model's classes, as the stack sets them on classify and filter (the record's class_names).
CLASS_NAMES = ("bicycle", "motorcycle")
FAKE_RUNTIME_URL = "http://sagemaker-runtime.fake:8080"

HANDLERS = [
    import_in_lambda(f"lambda_src.{function}.handler")
    for function in ("serialize_image", "classify_image", "filter_inferences")
]

# The modules beside each handler, by their own names (each function's folder is on sys.path).
import classify_settings  # noqa: E402
import filter_settings  # noqa: E402
import object_reader  # noqa: E402
import sagemaker_endpoint  # noqa: E402
import serialize_settings  # noqa: E402

SETTINGS = (serialize_settings, classify_settings, filter_settings)


def _start_afresh() -> None:
    for settings in SETTINGS:
        settings.get_settings.cache_clear()
    for handler in HANDLERS:
        handler.metrics.clear_metrics()


@pytest.fixture(autouse=True)
def fresh_execution_environment(monkeypatch) -> Iterator[None]:
    """Each test is a new execution environment: the handlers read their settings from the
    environment the test sets (at its first invocation; CLASS_NAMES as the stack sets it), and
    no metric is left over."""
    monkeypatch.setenv("CLASS_NAMES", ",".join(CLASS_NAMES))
    _start_afresh()
    yield
    _start_afresh()


@dataclass
class FakeLambdaContext:
    function_name: str = "handler-under-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:handler-under-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def s3() -> Iterator[Any]:
    """A moto S3 with one empty bucket; the handler's cached client is rebuilt inside moto."""
    object_reader.s3_client.cache_clear()
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client
    object_reader.s3_client.cache_clear()


class _RawBody(io.BytesIO):
    """The raw HTTP body botocore reads: a file with urllib3's stream()."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.read()


@dataclass
class FakeEndpoint:
    """Answers InvokeEndpoint at the HTTP level, after botocore serialized and signed it.

    Set ``status``/``body``/``headers`` for the reply, or ``error`` to raise a botocore
    exception (timeouts, connection errors) instead of answering. ``requests`` records every
    attempt, so a test sees whether the client retried.
    """

    status: int = 200
    body: bytes = b"[0.25, 0.75]"
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    error: Exception | None = None
    requests: list[Any] = field(default_factory=list)
    on_request: Callable[[Any], None] | None = None

    def reply_json(self, value: Any) -> None:
        self.status, self.body = 200, json.dumps(value).encode()

    def reply_error(self, status: int, code: str, **fields: Any) -> None:
        self.status = status
        self.headers = {"content-type": "application/json", "x-amzn-errortype": f"{code}:"}
        self.body = json.dumps({"Message": f"{code} from the fake endpoint", **fields}).encode()

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.requests.append(request)
        if self.on_request is not None:
            self.on_request(request)
        if self.error is not None:
            raise self.error
        return AWSResponse(request.url, self.status, self.headers, _RawBody(self.body))


@pytest.fixture
def fake_endpoint(monkeypatch) -> Iterator[FakeEndpoint]:
    """ENDPOINT_NAME set and the handler's (cached) runtime client answered by a FakeEndpoint."""
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT_NAME)
    # An address moto does not claim: under mock_aws, moto's own sagemaker-runtime mock would
    # also see the request, and it fails on a binary body.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", FAKE_RUNTIME_URL)
    monkeypatch.delenv("ENDPOINT_READ_TIMEOUT_SECONDS", raising=False)
    monkeypatch.delenv("ENDPOINT_CONNECT_TIMEOUT_SECONDS", raising=False)
    sagemaker_endpoint.runtime_client.cache_clear()
    settings = classify_settings.get_settings()
    classify_settings.get_settings.cache_clear()  # the test may still change the environment
    client = sagemaker_endpoint.runtime_client(settings.read_timeout, settings.connect_timeout)
    endpoint = FakeEndpoint()
    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", endpoint)
    yield endpoint
    sagemaker_endpoint.runtime_client.cache_clear()


@pytest.fixture
def emitted_metrics(capsys) -> Callable[[], dict[str, float]]:
    """Return the metrics printed (CloudWatch EMF) so far, by name, checking their namespace."""

    def read() -> dict[str, float]:
        found: dict[str, float] = {}
        for line in capsys.readouterr().out.splitlines():
            if not line.startswith("{") or '"_aws"' not in line:
                continue
            blob = json.loads(line)
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                assert directive["Namespace"] == "SconesUnlimited"
                for metric in directive["Metrics"]:
                    value = blob[metric["Name"]]
                    found[metric["Name"]] = value[0] if isinstance(value, list) else value
        return found

    return read


def _encode(image: Image.Image, image_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


@pytest.fixture
def encode_image() -> Callable[..., bytes]:
    """encode_image(image, "PNG", **save_options) -> the encoded bytes."""
    return _encode


@pytest.fixture
def noise_image() -> Callable[..., Image.Image]:
    """noise_image(width, height, seed=0) -> random RGB pixels, the worst case to compress."""
    return _noise
