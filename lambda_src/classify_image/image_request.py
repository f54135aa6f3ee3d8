"""The request classify_image takes: serialize_image's output, its image decoded."""

from __future__ import annotations

import base64
import binascii
from typing import Any, NamedTuple, TypedDict

from classify_errors import InvalidInput

SIGNATURES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


class ClassifyRequest(TypedDict):
    s3_bucket: str
    s3_key: str
    image_data: str
    content_type: str


class EndpointImage(NamedTuple):
    bucket: str
    key: str
    body: bytes
    content_type: str


def parse_event(event: Any) -> EndpointImage:
    """The bucket, the key, the decoded image and its media type (one of SIGNATURES, matching
    the bytes)."""
    if not isinstance(event, dict):
        raise InvalidInput(f"expected a JSON object, got {type(event).__name__}")
    names = ("s3_bucket", "s3_key", "image_data", "content_type")
    bucket, key, image_data, content_type = (event.get(name) for name in names)
    for name, value in zip(names, (bucket, key, image_data, content_type), strict=True):
        if not isinstance(value, str) or not value:
            raise InvalidInput(f"event needs a non-empty string {name!r}")
    if content_type not in SIGNATURES:
        raise InvalidInput(
            f"content_type {content_type!r} of s3://{bucket}/{key} is not one of "
            f"{sorted(SIGNATURES)}: pass serialize_image's output on unchanged"
        )
    try:
        body = base64.b64decode(image_data, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidInput(f"image_data of s3://{bucket}/{key} is not base64: {error}") from error
    if not body.startswith(SIGNATURES[content_type]):
        raise InvalidInput(f"image_data of s3://{bucket}/{key} is not the {content_type} it claims")
    return EndpointImage(bucket, key, body, content_type)
