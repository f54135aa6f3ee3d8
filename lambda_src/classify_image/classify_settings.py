"""classify_image's environment variables, as one typed model read once per environment.

Lambda fixes a function's environment for the life of an execution environment, so the
variables are read at the first invocation and kept; a missing or unusable value raises
ConfigurationError (naming the variable) at every invocation until it is fixed.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

from classify_errors import ConfigurationError

DEFAULT_READ_TIMEOUT_SECONDS = 10.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class EndpointSettings:
    endpoint_name: str
    read_timeout: float
    connect_timeout: float
    class_names: tuple[str, ...]  # the model's, in the order of the endpoint's answer


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


def _class_names(listed: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in listed.split(","))
    if len(names) < 2 or "" in names or len(set(names)) < len(names):
        raise ConfigurationError(f"CLASS_NAMES={listed!r} is not two or more distinct class names")
    return names


@functools.cache
def get_settings() -> EndpointSettings:
    """ENDPOINT_NAME, the two timeouts and CLASS_NAMES (see the handler's doc)."""
    endpoint_name = os.environ.get("ENDPOINT_NAME", "").strip()
    if not endpoint_name:
        raise ConfigurationError("ENDPOINT_NAME is not set; it names the SageMaker endpoint")
    class_names = os.environ.get("CLASS_NAMES", "").strip()
    if not class_names:
        raise ConfigurationError(
            "CLASS_NAMES is not set; it lists the model's classes, comma-separated, in the "
            "order of the endpoint's answer"
        )
    return EndpointSettings(
        endpoint_name=endpoint_name,
        read_timeout=_positive_seconds(
            "ENDPOINT_READ_TIMEOUT_SECONDS", DEFAULT_READ_TIMEOUT_SECONDS
        ),
        connect_timeout=_positive_seconds(
            "ENDPOINT_CONNECT_TIMEOUT_SECONDS", DEFAULT_CONNECT_TIMEOUT_SECONDS
        ),
        class_names=_class_names(class_names),
    )
