"""What a failed InvokeEndpoint means: EndpointUnavailable (transient) or EndpointError.

Transient: the codes ThrottlingException, ServiceUnavailable, InternalFailure,
InternalDependencyException and ModelNotReadyException, any HTTP 5xx or 429, a ModelError
whose original status is >= 500 or 429, and a call that never got an answer (connect or
read timeout, connection error). Everything else is permanent.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from classify_errors import EndpointError, EndpointUnavailable

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


def _is_transient_status(status: Any) -> bool:
    return isinstance(status, int) and (status >= SERVER_ERROR or status == TOO_MANY_REQUESTS)


def service_failure(endpoint_name: str, error: ClientError) -> Exception:
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


def connection_failure(endpoint_name: str, error: Exception) -> Exception:
    """A call that got no answer: a timeout or a connection error."""
    return EndpointUnavailable(
        f"endpoint {endpoint_name} unreachable: {type(error).__name__}: {error}"
    )
