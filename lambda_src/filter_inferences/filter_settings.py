"""filter_inferences' environment variables, as one typed model read once per environment.

Lambda fixes a function's environment for the life of an execution environment, so
THRESHOLD and CLASS_NAMES are read at the first invocation and kept; a missing or unusable
value raises ConfigurationError (naming the variable) at every invocation until it is fixed.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

from filter_errors import ConfigurationError


@dataclass(frozen=True)
class FilterSettings:
    threshold: float
    class_names: tuple[str, ...]  # the model's, in the order of the inferences


def _class_names(listed: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in listed.split(","))
    if len(names) < 2 or "" in names or len(set(names)) < len(names):
        raise ConfigurationError(f"CLASS_NAMES={listed!r} is not two or more distinct class names")
    return names


@functools.cache
def get_settings() -> FilterSettings:
    """THRESHOLD: the lowest confidence that passes, a float in (0, 1]; CLASS_NAMES: the model's
    classes, two or more distinct names, comma-separated (both required)."""
    raw = os.environ.get("THRESHOLD")
    if raw is None or raw.strip() == "":
        raise ConfigurationError("THRESHOLD is not set; it must be a float in (0, 1]")
    try:
        threshold = float(raw)
    except ValueError:
        threshold = math.nan
    if not (0.0 < threshold <= 1.0):
        raise ConfigurationError(f"THRESHOLD={raw!r} is not a float in (0, 1]")
    listed = os.environ.get("CLASS_NAMES", "")
    if not listed.strip():
        raise ConfigurationError(
            "CLASS_NAMES is not set; it lists the model's classes, comma-separated, in the "
            "order of the inferences"
        )
    return FilterSettings(threshold=threshold, class_names=_class_names(listed))
