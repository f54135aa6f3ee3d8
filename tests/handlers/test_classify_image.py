"""classify_image: one InvokeEndpoint attempt, strict response checks, typed errors.

The endpoint is faked at the HTTP level (see FakeEndpoint in conftest), so botocore's real
serialization, error parsing and retry configuration are exercised.
"""

from __future__ import annotations

import base64
import io

import classify_errors
import classify_settings
import pytest
import sagemaker_endpoint
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from PIL import Image

import lambda_src.classify_image.handler as classify

ENDPOINT_NAME = "scones-classifier"


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "orange").save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (384, 288), "orange").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def request(**overrides) -> dict:
    event = {
        "s3_bucket": "scones-images",
        "s3_key": "incoming/bike.png",
        "image_data": base64.b64encode(png_bytes()).decode(),
        "content_type": "image/png",
        "source": {"format": "PNG", "width": 32, "height": 32, "mode": "RGB", "bytes": 99},
    }
    event.update(overrides)
    return {name: value for name, value in event.items() if value is not None}


def test_sends_the_png_once_and_returns_the_probabilities(
    fake_endpoint, lambda_context, emitted_metrics
):
    fake_endpoint.reply_json([0.125, 0.875])

    result = classify.lambda_handler(request(), lambda_context)

    assert result == {
        "s3_bucket": "scones-images",
        "s3_key": "incoming/bike.png",
        "inferences": [0.125, 0.875],
    }
    [sent] = fake_endpoint.requests
    assert sent.url == f"http://sagemaker-runtime.fake:8080/endpoints/{ENDPOINT_NAME}/invocations"
    assert sent.headers["Content-Type"] in (b"image/png", "image/png")
    assert sent.headers["Accept"] in (b"application/json", "application/json")
    assert sent.body == png_bytes()
    metrics = emitted_metrics()
    assert metrics["Inferences"] == 1
    assert metrics["EndpointLatency"] >= 0


def test_a_jpeg_goes_to_the_endpoint_as_image_jpeg(fake_endpoint, lambda_context):
    fake_endpoint.reply_json([0.5, 0.5])
    event = request(image_data=base64.b64encode(jpeg_bytes()).decode(), content_type="image/jpeg")

    classify.lambda_handler(event, lambda_context)

    [sent] = fake_endpoint.requests
    assert sent.headers["Content-Type"] in (b"image/jpeg", "image/jpeg")
    assert sent.body == jpeg_bytes()


def test_client_makes_one_attempt_with_timeouts_from_the_environment(monkeypatch):
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT_NAME)
    monkeypatch.setenv("ENDPOINT_READ_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("ENDPOINT_CONNECT_TIMEOUT_SECONDS", "1")
    sagemaker_endpoint.runtime_client.cache_clear()
    settings = classify_settings.get_settings()

    client = sagemaker_endpoint.runtime_client(settings.read_timeout, settings.connect_timeout)

    assert client.meta.config.read_timeout == 2.5
    assert client.meta.config.connect_timeout == 1
    assert client.meta.config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert client.meta.service_model.service_name == "sagemaker-runtime"
    sagemaker_endpoint.runtime_client.cache_clear()


def test_endpoint_url_comes_from_the_environment(fake_endpoint, lambda_context, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "http://127.0.0.1:9/")
    sagemaker_endpoint.runtime_client.cache_clear()
    settings = classify_settings.get_settings()
    client = sagemaker_endpoint.runtime_client(settings.read_timeout, settings.connect_timeout)
    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", fake_endpoint)

    classify.lambda_handler(request(), lambda_context)

    assert fake_endpoint.requests[0].url.startswith("http://127.0.0.1:9/endpoints/")


def test_probabilities_within_the_sum_tolerance_pass(fake_endpoint, lambda_context):
    fake_endpoint.reply_json([0.5, 0.5009])

    assert classify.lambda_handler(request(), lambda_context)["inferences"] == [0.5, 0.5009]


TRANSIENT_SERVICE_ERRORS = [
    # Capacity: the workflow's capacity retrier waits these out (endpoint_failures says why).
    pytest.param(400, "ThrottlingException", {}, "EndpointBusy", id="throttling"),
    pytest.param(503, "ServiceUnavailable", {}, "EndpointBusy", id="service-unavailable"),
    pytest.param(429, "ModelNotReadyException", {}, "EndpointBusy", id="model-not-ready"),
    pytest.param(429, "TooManyRequests", {}, "EndpointBusy", id="http-429"),
    pytest.param(503, "BackendUnavailable", {}, "EndpointBusy", id="http-503"),
    pytest.param(424, "ModelError", {"OriginalStatusCode": 503}, "EndpointBusy", id="model-503"),
    pytest.param(424, "ModelError", {"OriginalStatusCode": 429}, "EndpointBusy", id="model-429"),
    # Transient but not capacity: retried briefly, never for the capacity retrier's 15 minutes.
    pytest.param(500, "InternalFailure", {}, "EndpointUnavailable", id="internal-failure"),
    pytest.param(
        530, "InternalDependencyException", {}, "EndpointUnavailable", id="internal-dependency"
    ),
    pytest.param(502, "BadGateway", {}, "EndpointUnavailable", id="http-5xx"),
    pytest.param(504, "GatewayTimeout", {}, "EndpointUnavailable", id="http-504"),
    pytest.param(
        424, "ModelError", {"OriginalStatusCode": 500}, "EndpointUnavailable", id="model-500"
    ),
    pytest.param(
        424, "ModelError", {"OriginalStatusCode": 502}, "EndpointUnavailable", id="model-502"
    ),
]
PERMANENT_SERVICE_ERRORS = [
    pytest.param(400, "ValidationError", {}, id="no-such-endpoint"),
    pytest.param(424, "ModelError", {"OriginalStatusCode": 400}, id="model-error-4xx"),
    pytest.param(424, "ModelError", {"OriginalStatusCode": 415}, id="model-error-415"),
]


@pytest.mark.parametrize(("status", "code", "fields", "kind"), TRANSIENT_SERVICE_ERRORS)
def test_transient_service_errors_are_endpoint_busy_or_endpoint_unavailable(
    fake_endpoint, lambda_context, emitted_metrics, status, code, fields, kind
):
    fake_endpoint.reply_error(status, code, **fields)

    with pytest.raises(getattr(classify_errors, kind), match=ENDPOINT_NAME):
        classify.lambda_handler(request(), lambda_context)
    assert len(fake_endpoint.requests) == 1, "Step Functions owns retries"
    assert emitted_metrics()["EndpointFailures"] == 1


@pytest.mark.parametrize(("status", "code", "fields"), PERMANENT_SERVICE_ERRORS)
def test_permanent_service_errors_are_endpoint_error(
    fake_endpoint, lambda_context, status, code, fields
):
    fake_endpoint.reply_error(status, code, **fields)

    with pytest.raises(classify_errors.EndpointError, match=ENDPOINT_NAME) as raised:
        classify.lambda_handler(request(), lambda_context)
    assert code in str(raised.value) or "model error" in str(raised.value)
    assert len(fake_endpoint.requests) == 1


def test_model_error_message_names_the_original_status(fake_endpoint, lambda_context):
    fake_endpoint.reply_error(424, "ModelError", OriginalStatusCode=400)

    with pytest.raises(classify_errors.EndpointError, match="original status 400"):
        classify.lambda_handler(request(), lambda_context)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ReadTimeoutError(endpoint_url="https://runtime.sagemaker"), "EndpointBusy"),
        (ConnectTimeoutError(endpoint_url="https://runtime.sagemaker"), "EndpointBusy"),
        (EndpointConnectionError(endpoint_url="https://runtime.sagemaker"), "EndpointUnavailable"),
        (ConnectionClosedError(endpoint_url="https://runtime.sagemaker"), "EndpointUnavailable"),
    ],
    ids=["read-timeout", "connect-timeout", "connection-refused", "connection-closed"],
)
def test_timeouts_are_endpoint_busy_and_connection_errors_endpoint_unavailable(
    fake_endpoint, lambda_context, error, kind
):
    fake_endpoint.error = error

    with pytest.raises(getattr(classify_errors, kind), match=type(error).__name__) as raised:
        classify.lambda_handler(request(), lambda_context)
    assert type(raised.value).__name__ == kind
    assert len(fake_endpoint.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html>gateway error</html>",
        b"",
        b'{"bicycle": 0.2, "motorcycle": 0.8}',
        b"[0.5]",
        b"[0.2, 0.3, 0.5]",
        b"[0.7, 0.4]",
        b"[NaN, 1.0]",
        b"[Infinity, 0.0]",
        b"[1.5, -0.5]",
        b"[true, false]",
        b'["0.5", "0.5"]',
        b"[[0.5, 0.5]]",
    ],
)
def test_malformed_bodies_are_endpoint_error(fake_endpoint, lambda_context, body):
    fake_endpoint.status, fake_endpoint.body = 200, body

    with pytest.raises(classify_errors.EndpointError, match=ENDPOINT_NAME):
        classify.lambda_handler(request(), lambda_context)


def test_the_answer_has_one_probability_per_class_of_class_names(
    fake_endpoint, lambda_context, monkeypatch
):
    monkeypatch.setenv("CLASS_NAMES", "road,mountain,cargo")
    fake_endpoint.reply_json([0.2, 0.3, 0.5])
    assert classify.lambda_handler(request(), lambda_context)["inferences"] == [0.2, 0.3, 0.5]

    classify_settings.get_settings.cache_clear()  # a new execution environment
    monkeypatch.setenv("CLASS_NAMES", "bicycle,motorcycle")
    expected = r"expected a JSON list of 2 numbers \[p_bicycle, p_motorcycle\]"
    with pytest.raises(classify_errors.EndpointError, match=expected):
        classify.lambda_handler(request(), lambda_context)


@pytest.mark.parametrize(
    "event",
    [
        request(image_data=None),
        request(image_data=""),
        request(image_data="not base64 at all!"),
        request(image_data=base64.b64encode(b"GIF89a not a png").decode()),
        request(image_data=base64.b64encode(jpeg_bytes()).decode()),
        request(content_type=None),
        request(content_type="image/gif"),
        request(s3_key=None),
        request(s3_bucket=42),
        "a string, not an object",
    ],
    ids=[
        "no-image",
        "empty-image",
        "bad-base64",
        "not-png",
        "jpeg-said-png",
        "no-content-type",
        "gif-content-type",
        "no-key",
        "bucket-not-string",
        "not-an-object",
    ],
)
def test_invalid_requests_are_invalid_input_and_never_reach_the_endpoint(
    fake_endpoint, lambda_context, event
):
    with pytest.raises(classify_errors.InvalidInput):
        classify.lambda_handler(event, lambda_context)
    assert fake_endpoint.requests == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ENDPOINT_NAME", ""),
        ("ENDPOINT_READ_TIMEOUT_SECONDS", "-1"),
        ("ENDPOINT_CONNECT_TIMEOUT_SECONDS", "soon"),
        ("CLASS_NAMES", ""),
        ("CLASS_NAMES", "bicycle"),
        ("CLASS_NAMES", "bicycle,"),
        ("CLASS_NAMES", "bicycle,bicycle"),
    ],
)
def test_invalid_configuration_names_the_variable(
    fake_endpoint, lambda_context, monkeypatch, name, value
):
    monkeypatch.setenv(name, value)

    with pytest.raises(classify_errors.ConfigurationError, match=name):
        classify.lambda_handler(request(), lambda_context)
