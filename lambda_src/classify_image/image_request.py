"""The request classify_image takes: serialize_image's output, its PNG decoded."""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypedDict

from classify_errors import InvalidInput

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ClassifyRequest(TypedDict):
    s3_bucket: str
    s3_key: str
    image_data: str


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
