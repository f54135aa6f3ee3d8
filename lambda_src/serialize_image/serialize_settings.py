"""serialize_image's environment variables, as one typed model read once per environment.

Lambda fixes a function's environment for the life of an execution environment, so the
variables are read at the first invocation and kept; a value out of range raises
ConfigurationError (naming the variable) at every invocation until it is fixed.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from serialize_errors import ConfigurationError

DEFAULT_MAX_OBJECT_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
DEFAULT_OUTPUT_MAX_SIDE = 384
LARGEST_OUTPUT_MAX_SIDE = 384


@dataclass(frozen=True)
class Settings:
    max_object_bytes: int
    max_image_pixels: int
    output_max_side: int


def _int_setting(name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    if maximum is None:
        allowed = f"an integer >= {minimum}"
    else:
        allowed = f"an integer in [{minimum}, {maximum}]"
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not {allowed}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigurationError(f"{name}={raw!r} is not {allowed}")
    return value


@functools.cache
def get_settings() -> Settings:
    """MAX_OBJECT_BYTES, MAX_IMAGE_PIXELS and OUTPUT_MAX_SIDE (see the handler's doc)."""
    return Settings(
        max_object_bytes=_int_setting("MAX_OBJECT_BYTES", DEFAULT_MAX_OBJECT_BYTES, 1),
        max_image_pixels=_int_setting("MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS, 1),
        output_max_side=_int_setting(
            "OUTPUT_MAX_SIDE", DEFAULT_OUTPUT_MAX_SIDE, 1, LARGEST_OUTPUT_MAX_SIDE
        ),
    )
