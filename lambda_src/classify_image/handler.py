"""Classify a serialized image with the SageMaker endpoint.

Input (serialize_image's output; ``content_type`` and ``source`` are accepted and ignored)::

    {"s3_bucket": "my-bucket", "s3_key": "incoming/photo.jpg",
     "image_data": "<base64 PNG>", "content_type": "image/png", "source": {...}}

The decoded PNG goes to InvokeEndpoint (ContentType image/png, Accept application/json); the
endpoint answers a JSON list of class probabilities in the fixed order [bicycle, motorcycle].

Output (the image is dropped, Step Functions payloads stay small)::

    {"s3_bucket": "my-bucket", "s3_key": "incoming/photo.jpg",
     "inferences": [0.02, 0.98]}

The client makes exactly one attempt: Step Functions owns the retries, so a transient failure
surfaces at once as ``EndpointUnavailable``.

Errors (the class name is the errorType Step Functions sees):
    InvalidInput         missing keys, image_data not base64 or not a PNG
    EndpointUnavailable  transient: throttling, ServiceUnavailable, InternalFailure,
                         ModelNotReadyException, HTTP 5xx, ModelError with an original status
                         >= 500 or 429, connect/read timeouts, connection errors
    EndpointError        permanent: ValidationError (e.g. no such endpoint), ModelError with
                         another original status, other 4xx, a body that is not a JSON list of
                         two finite probabilities in [0, 1] summing to 1 (within 1e-3)
    ConfigurationError   ENDPOINT_NAME unset, or a timeout variable not a positive number

Environment:
    ENDPOINT_NAME                    the SageMaker endpoint to invoke (required)
    ENDPOINT_READ_TIMEOUT_SECONDS    read timeout (default 10)
    ENDPOINT_CONNECT_TIMEOUT_SECONDS connect timeout (default 3)

Metrics: ``Inferences`` (count), ``EndpointLatency`` (milliseconds, also on failures) and
``EndpointFailures`` (count of EndpointUnavailable and EndpointError).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import os
import time
from typing import Any, TypedDict

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

DEFAULT_READ_TIMEOUT_SECONDS = 10.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 3.0
DEFAULT_METRICS_NAMESPACE = "SconesUnlimited"
REQUEST_CONTENT_TYPE = "image/png"
RESPONSE_ACCEPT = "application/json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASS_COUNT = 2
PROBABILITY_SUM_TOLERANCE = 1e-3
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalDependencyException",
        "ModelNotReadyException",
    }
)
TOO_MANY_REQUESTS = 429
SERVER_ERROR = 500

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class ClassifyRequest(TypedDict):
    s3_bucket: str
    s3_key: str
    image_data: str


class ClassifyResult(TypedDict):
    s3_bucket: str
    s3_key: str
    inferences: list[float]


class InvalidInput(Exception):
    """The event lacks the bucket, the key or a base64 PNG in image_data."""


class EndpointUnavailable(Exception):
    """A transient endpoint failure: worth retrying later."""


class EndpointError(Exception):
    """A permanent endpoint failure: retrying the same request will not help."""


class ConfigurationError(Exception):
    """An environment variable is missing or has a value this function cannot use."""


class EndpointSettings(TypedDict):
    endpoint_name: str
    read_timeout: float
    connect_timeout: float


def _positive_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{name}={raw!r} is not a positive number of seconds")
    return value


def load_settings() -> EndpointSettings:
    """Read the endpoint settings from the environment at call time."""
    endpoint_name = os.environ.get("ENDPOINT_NAME", "").strip()
    if not endpoint_name:
        raise ConfigurationError("ENDPOINT_NAME is not set; it names the SageMaker endpoint")
    return EndpointSettings(
        endpoint_name=endpoint_name,
        read_timeout=_positive_seconds(
            "ENDPOINT_READ_TIMEOUT_SECONDS", DEFAULT_READ_TIMEOUT_SECONDS
        ),
        connect_timeout=_positive_seconds(
            "ENDPOINT_CONNECT_TIMEOUT_SECONDS", DEFAULT_CONNECT_TIMEOUT_SECONDS
        ),
    )


@functools.cache
def runtime_client(read_timeout: float, connect_timeout: float) -> Any:
    """A sagemaker-runtime client that tries once; AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME applies.

    botocore's ``max_attempts`` counts retries (1 would mean two attempts); ``total_max_attempts``
    counts attempts, so 1 disables retries.
    """
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return boto3.client("sagemaker-runtime", config=config)


def reset_clients() -> None:
    """Forget the cached clients, e.g. after a test changed the endpoint URL."""
    runtime_client.cache_clear()


def _refresh_metrics_settings() -> None:
    """Powertools reads namespace and service when the module is imported; use the current env."""
    metrics.namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_METRICS_NAMESPACE
    metrics.service = os.environ.get("POWERTOOLS_SERVICE_NAME") or metrics.service


def parse_event(event: Any) -> tuple[str, str, bytes]:
    """Return the bucket, the key and the decoded PNG bytes."""
    if not isinstance(event, dict):
        raise InvalidInput(f"expected a JSON object, got {type(event).__name__}")
    bucket, key, image_data = (event.get(name) for name in ("s3_bucket", "s3_key", "image_data"))
    for name, value in (("s3_bucket", bucket), ("s3_key", key), ("image_data", image_data)):
        if not isinstance(value, str) or not value:
            raise InvalidInput(f"event needs a non-empty string {name!r}")
    try:
        png = base64.b64decode(image_data, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidInput(f"image_data of s3://{bucket}/{key} is not base64: {error}") from error
    if not png.startswith(PNG_SIGNATURE):
        raise InvalidInput(f"image_data of s3://{bucket}/{key} is not a PNG")
    return bucket, key, png


def _is_transient_status(status: Any) -> bool:
    return isinstance(status, int) and (status >= SERVER_ERROR or status == TOO_MANY_REQUESTS)


def _endpoint_failure(endpoint_name: str, error: ClientError) -> Exception:
    """Map a service error onto EndpointUnavailable (transient) or EndpointError (permanent)."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code == "ModelError":
        original = error.response.get("OriginalStatusCode")
        cause = f"endpoint {endpoint_name}: model error (original status {original}): {message}"
        transient = _is_transient_status(original)
    else:
        cause = f"endpoint {endpoint_name}: {code or 'error'} (HTTP {status}): {message}"
        transient = code in TRANSIENT_ERROR_CODES or _is_transient_status(status)
    return EndpointUnavailable(cause) if transient else EndpointError(cause)


def parse_probabilities(endpoint_name: str, body: bytes) -> list[float]:
    """Check the body is a JSON list of two finite probabilities in [0, 1] summing to 1."""
    try:
        decoded = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise EndpointError(
            f"endpoint {endpoint_name} returned a body that is not JSON: {body[:100]!r}"
        ) from error
    is_list_of_numbers = isinstance(decoded, list) and all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in decoded
    )
    if not is_list_of_numbers or len(decoded) != CLASS_COUNT:
        raise EndpointError(
            f"endpoint {endpoint_name} returned {body[:100]!r}, expected a JSON list of "
            f"{CLASS_COUNT} numbers [p_bicycle, p_motorcycle]"
        )
    probabilities = [float(value) for value in decoded]
    if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probabilities):
        raise EndpointError(
            f"endpoint {endpoint_name} returned {probabilities}, not probabilities in [0, 1]"
        )
    if abs(sum(probabilities) - 1.0) > PROBABILITY_SUM_TOLERANCE:
        raise EndpointError(
            f"endpoint {endpoint_name} returned {probabilities}, which sum to "
            f"{sum(probabilities)} instead of 1"
        )
    return probabilities


@tracer.capture_method(capture_response=False)  # the endpoint's body, of any size
def invoke_endpoint(settings: EndpointSettings, png: bytes) -> bytes:
    """Send the PNG once and return the raw response body."""
    endpoint_name = settings["endpoint_name"]
    client = runtime_client(settings["read_timeout"], settings["connect_timeout"])
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint_name,
            ContentType=REQUEST_CONTENT_TYPE,
            Accept=RESPONSE_ACCEPT,
            Body=png,
        )
        return response["Body"].read()
    except ClientError as error:
        raise _endpoint_failure(endpoint_name, error) from error
    except (BotocoreConnectionError, HTTPClientError) as error:
        raise EndpointUnavailable(
            f"endpoint {endpoint_name} unreachable: {type(error).__name__}: {error}"
        ) from error


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: ClassifyRequest, context: LambdaContext) -> ClassifyResult:
    _refresh_metrics_settings()
    settings = load_settings()
    bucket, key, png = parse_event(event)
    started = time.perf_counter()
    try:
        body = invoke_endpoint(settings, png)
        inferences = parse_probabilities(settings["endpoint_name"], body)
    except (EndpointUnavailable, EndpointError) as error:
        metrics.add_metric(name="EndpointFailures", unit=MetricUnit.Count, value=1)
        logger.warning(
            "Endpoint failed", extra={"error": type(error).__name__, "cause": str(error)}
        )
        raise
    finally:
        latency_ms = (time.perf_counter() - started) * 1000
        metrics.add_metric(name="EndpointLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
    metrics.add_metric(name="Inferences", unit=MetricUnit.Count, value=1)
    logger.info(
        "Image classified",
        extra={"object": f"s3://{bucket}/{key}", "inferences": inferences, "ms": latency_ms},
    )
    return ClassifyResult(s3_bucket=bucket, s3_key=key, inferences=inferences)
