"""What a failed InvokeEndpoint means, as the error type the workflow retries (or not) by.

EndpointBusy, the endpoint is up and the request is sound but there is no room for it now;
the workflow's capacity retrier waits (15 minutes on average) for autoscaling to add room:
    ThrottlingException      SageMaker refuses requests beyond what the endpoint is taking
    HTTP 429, any code       "too many requests", capacity by definition
    ModelNotReadyException   (429) the model is not loaded yet on the instance the request
                             reached, as on one a scale-out has just added; it serves soon
    ServiceUnavailable, 503  SageMaker (or a gateway) cannot take the request now: HTTP's
                             "temporarily overloaded, try later"
    ModelError, original     the container said it is full: TorchServe answers 503 when the
    status 429 or 503        model's job queue is full; a 429 is the container's own throttle
    read timeout             the request got in but its answer took longer than
                             ENDPOINT_READ_TIMEOUT_SECONDS (an inference takes ~0.1 s): it
                             queued behind others on a saturated instance
    connect timeout          the front end did not accept the connection in time (a closed
                             or missing endpoint refuses at once: a connection error, below;
                             a lost network route also times out, and waits as long)

EndpointUnavailable, transient but not capacity: the endpoint or the model is failing, and
more instances would not help; a few quick retries (2-20 s) ride out a blip:
    InternalFailure          (500) SageMaker's own internal error
    InternalDependencyException  (530) a service SageMaker depends on failed
    other HTTP 5xx           500, 502, 504, ...: a server failure not reported as overload
    ModelError, original     the model's own failure (its code raised: TorchServe's 500); a
    status >= 500, not 503   broken model fails the same way 15 minutes later
    connection errors        refused, reset or closed (EndpointConnectionError,
                             ConnectionClosedError, ...): nothing listening, or the line dropped

EndpointError, permanent: anything else (ValidationError such as no such endpoint, access
denied, other 4xx, a ModelError with a 4xx original status: the model refused the input).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from classify_errors import EndpointBusy, EndpointError, EndpointUnavailable

BUSY_ERROR_CODES = frozenset(
    {"ThrottlingException", "ModelNotReadyException", "ServiceUnavailable"}
)
UNAVAILABLE_ERROR_CODES = frozenset({"InternalFailure", "InternalDependencyException"})
BUSY_STATUSES = frozenset({429, 503})
SERVER_ERROR = 500


def _kind_of_status(status: Any) -> type[Exception]:
    if status in BUSY_STATUSES:
        return EndpointBusy
    if isinstance(status, int) and status >= SERVER_ERROR:
        return EndpointUnavailable
    return EndpointError


def service_failure(endpoint_name: str, error: ClientError) -> Exception:
    """Map a service error onto EndpointBusy, EndpointUnavailable or EndpointError."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code == "ModelError":
        original = error.response.get("OriginalStatusCode")
        cause = f"endpoint {endpoint_name}: model error (original status {original}): {message}"
        return _kind_of_status(original)(cause)
    cause = f"endpoint {endpoint_name}: {code or 'error'} (HTTP {status}): {message}"
    if code in BUSY_ERROR_CODES:
        return EndpointBusy(cause)
    if code in UNAVAILABLE_ERROR_CODES:
        return EndpointUnavailable(cause)
    return _kind_of_status(status)(cause)


def connection_failure(endpoint_name: str, error: Exception) -> Exception:
    """A call that got no answer: EndpointBusy if it timed out, else EndpointUnavailable."""
    timed_out = isinstance(error, ReadTimeoutError | ConnectTimeoutError)
    kind = EndpointBusy if timed_out else EndpointUnavailable
    return kind(f"endpoint {endpoint_name} unreachable: {type(error).__name__}: {error}")
