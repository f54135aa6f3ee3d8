"""filter_inferences' environment variables, as one typed model read once per environment.

Lambda fixes a function's environment for the life of an execution environment, so
THRESHOLD is read at the first invocation and kept; a missing or unusable value raises
ConfigurationError at every invocation until it is fixed.
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


@functools.cache
def get_settings() -> FilterSettings:
    """THRESHOLD: the lowest confidence that passes, a float in (0, 1] (required)."""
    raw = os.environ.get("THRESHOLD")
    if raw is None or raw.strip() == "":
        raise ConfigurationError("THRESHOLD is not set; it must be a float in (0, 1]")
    try:
        threshold = float(raw)
    except ValueError:
        threshold = math.nan
    if not (0.0 < threshold <= 1.0):
        raise ConfigurationError(f"THRESHOLD={raw!r} is not a float in (0, 1]")
    return FilterSettings(threshold=threshold)
