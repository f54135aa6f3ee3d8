"""What the workflow sends the endpoint: an image as the serialize Lambda's own code passes it on
(a JPEG of longest side ``OUTPUT_MAX_SIDE``, 384 px by default as deployed; a PNG for a
thumbnail of at most 64 px)."""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType

from training.evaluate import import_from_folder

SERIALIZE_DIR = Path(__file__).resolve().parents[1] / "lambda_src" / "serialize_image"


@functools.cache
def _serialize_module(name: str) -> ModuleType:
    return import_from_folder(SERIALIZE_DIR, name)


def as_serialized(body: bytes) -> tuple[bytes, str]:
    """``body`` through serialize's ``normalize_image`` with its default settings: the bytes
    passed on and their content type."""
    settings = _serialize_module("serialize_settings")
    image, content_type, _ = _serialize_module("image_decoding").normalize_image(
        body, "bench image", settings.DEFAULT_OUTPUT_MAX_SIDE, settings.DEFAULT_MAX_IMAGE_PIXELS
    )
    return image, content_type
