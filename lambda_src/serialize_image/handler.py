"""Read an image from S3 and pass it on as a small, normalized, base64-encoded PNG.

Input, either a direct request::

    {"s3_bucket": "my-bucket", "s3_key": "incoming/photo.jpg"}

or the EventBridge S3 "Object Created" event, as the rule delivers it::

    {"source": "aws.s3", "detail-type": "Object Created",
     "detail": {"bucket": {"name": "my-bucket"}, "object": {"key": "incoming/photo.jpg", ...}}}

The EventBridge event carries the key as stored ("red flower+1.jpg" stays so): S3 URL-encodes
keys only in its SQS, SNS and Lambda notifications, and decoding would read "a b.jpg" for the
object "a+b.jpg". When the event names a ``version-id`` (a versioned bucket), exactly that
version is read, so an overwrite after the event cannot change what is classified; a delete
after the event (of the object or of that version) is ImageNotFound. A direct request's
``s3_key`` is used as given, and its current version read.

Output::

    {"s3_bucket": "my-bucket", "s3_key": "incoming/photo.jpg",
     "image_data": "<base64 PNG, RGB, longest side <= OUTPUT_MAX_SIDE>",
     "content_type": "image/png",
     "source": {"format": "JPEG", "width": 4032, "height": 3024, "mode": "RGB",
                "bytes": 2811234}}

``source`` describes the object as stored (before EXIF rotation and resizing).

The object is only read (HeadObject, GetObject), never written, deleted or altered.

Errors (the class name is the errorType Step Functions sees):
    InvalidInput        the event names no bucket or key
    ImageNotFound       no such object, version or bucket (also: deleted after the event)
    InvalidImage        empty, not an image, truncated or undecodable
    ImageTooLarge       more than MAX_OBJECT_BYTES bytes or MAX_IMAGE_PIXELS pixels
    AccessDenied        S3 refused this function's role (a missing grant or key policy)
    ConfigurationError  an environment variable below is out of range

Environment:
    MAX_OBJECT_BYTES    largest object read, in bytes (default 20 MiB)
    MAX_IMAGE_PIXELS    largest declared width * height (default 40_000_000)
    OUTPUT_MAX_SIDE     longest side of the PNG passed on, 1..192 (default 128); the cap keeps
                        the payload far below the 256 KiB Step Functions limit

Metrics: ``ImagesSerialized`` (count), ``SourceImageBytes`` (bytes of the object read) and
``ImagesRejected`` (count of InvalidInput, ImageNotFound, InvalidImage and ImageTooLarge).
"""

from __future__ import annotations

import base64
import functools
import os
from typing import Any, NamedTuple, TypedDict

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from image_decoding import ImageTooLarge, InvalidImage, SourceImage, normalize_image

DEFAULT_MAX_OBJECT_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
DEFAULT_OUTPUT_MAX_SIDE = 128
LARGEST_OUTPUT_MAX_SIDE = 192
OUTPUT_CONTENT_TYPE = "image/png"
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound"})
_ACCESS_DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class SerializeRequest(TypedDict):
    s3_bucket: str
    s3_key: str


class S3EventBucket(TypedDict):
    name: str


S3EventObject = TypedDict(
    "S3EventObject",
    {"key": str, "size": int, "etag": str, "version-id": str, "sequencer": str},
    total=False,
)


class S3EventDetail(TypedDict):
    bucket: S3EventBucket
    object: S3EventObject


EventBridgeS3Event = TypedDict(
    "EventBridgeS3Event", {"source": str, "detail-type": str, "detail": S3EventDetail}
)


class ObjectRef(NamedTuple):
    bucket: str
    key: str
    version_id: str | None

    def __str__(self) -> str:
        where = f"s3://{self.bucket}/{self.key}"
        return f"{where} (version {self.version_id})" if self.version_id else where


class SerializedImage(TypedDict):
    s3_bucket: str
    s3_key: str
    image_data: str
    content_type: str
    source: SourceImage


class InvalidInput(Exception):
    """The event does not name an S3 bucket and key."""


class ImageNotFound(Exception):
    """The object (or its bucket) does not exist."""


class AccessDenied(Exception):
    """S3 refused the function's role: the deployment lacks a grant."""


class ConfigurationError(Exception):
    """An environment variable has a value this function cannot use."""


class Settings(TypedDict):
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


def load_settings() -> Settings:
    """Read the limits from the environment at call time (tests and the emulator vary them)."""
    return Settings(
        max_object_bytes=_int_setting("MAX_OBJECT_BYTES", DEFAULT_MAX_OBJECT_BYTES, 1),
        max_image_pixels=_int_setting("MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS, 1),
        output_max_side=_int_setting(
            "OUTPUT_MAX_SIDE", DEFAULT_OUTPUT_MAX_SIDE, 1, LARGEST_OUTPUT_MAX_SIDE
        ),
    )


@functools.cache
def s3_client() -> Any:
    """One S3 client per process, built from the environment (AWS_ENDPOINT_URL_S3 included)."""
    return boto3.client("s3")


def _non_empty_string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_event(event: Any) -> ObjectRef:
    """Return the object to read: bucket, key and, when named, the version."""
    if not isinstance(event, dict):
        raise InvalidInput(f"expected a JSON object, got {type(event).__name__}")
    if event.get("source") == "aws.s3" and isinstance(event.get("detail"), dict):
        detail = event["detail"]
        bucket = _non_empty_string((detail.get("bucket") or {}).get("name"))
        s3_object = detail.get("object") or {}
        key = _non_empty_string(s3_object.get("key"))
        if bucket is None or key is None:
            raise InvalidInput("S3 event has no detail.bucket.name or detail.object.key")
        return ObjectRef(bucket, key, _non_empty_string(s3_object.get("version-id")))
    bucket = _non_empty_string(event.get("s3_bucket"))
    key = _non_empty_string(event.get("s3_key"))
    if bucket is None or key is None:
        raise InvalidInput("event needs non-empty strings 's3_bucket' and 's3_key'")
    return ObjectRef(bucket, key, None)


def _version(ref: ObjectRef) -> dict[str, str]:
    return {"VersionId": ref.version_id} if ref.version_id else {}


def _is_not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _NOT_FOUND_CODES


def _is_access_denied(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _ACCESS_DENIED_CODES


def _access_denied(operation: str, ref: ObjectRef) -> AccessDenied:
    return AccessDenied(
        f"access denied: S3 refused {operation} of {ref} to this function's role; "
        "grant it s3:GetObject on the key's prefix (and kms:Decrypt on the bucket's key)"
    )


def _check_object_size(ref: ObjectRef, size: int, settings: Settings) -> None:
    if size == 0:
        raise InvalidImage(f"{ref} is empty")
    if size > settings["max_object_bytes"]:
        raise ImageTooLarge(
            f"{ref} has {size} bytes, more than MAX_OBJECT_BYTES={settings['max_object_bytes']}"
        )


@tracer.capture_method
def head_existing_object(ref: ObjectRef) -> int:
    """Return the size of the object (of the version the event names), or raise ImageNotFound:
    the version named is read even when overwritten since, not when the object was deleted."""
    try:
        head = s3_client().head_object(Bucket=ref.bucket, Key=ref.key)
        if ref.version_id and head.get("VersionId") != ref.version_id:
            head = s3_client().head_object(Bucket=ref.bucket, Key=ref.key, **_version(ref))
    except ClientError as error:
        if _is_not_found(error):
            raise ImageNotFound(_not_found_message(ref)) from error
        if _is_access_denied(error):
            raise _access_denied("HeadObject", ref) from error
        raise
    return int(head["ContentLength"])


def _not_found_message(ref: ObjectRef) -> str:
    if ref.version_id:
        return f"{ref} no longer exists: it was deleted after the event"
    return f"{ref} no longer exists, or never existed"


@tracer.capture_method(capture_response=False)  # the object's bytes, up to 20 MB
def read_object(ref: ObjectRef, settings: Settings) -> bytes:
    """Read the object, checking its size again: it may have changed since HeadObject."""
    try:
        response = s3_client().get_object(Bucket=ref.bucket, Key=ref.key, **_version(ref))
    except ClientError as error:
        if _is_not_found(error):
            raise ImageNotFound(_not_found_message(ref)) from error
        if _is_access_denied(error):
            raise _access_denied("GetObject", ref) from error
        raise
    body = response["Body"]
    try:
        _check_object_size(ref, int(response["ContentLength"]), settings)
        data = body.read(settings["max_object_bytes"] + 1)
    finally:
        body.close()
    _check_object_size(ref, len(data), settings)
    return data


def serialize_object(event: Any, settings: Settings) -> SerializedImage:
    ref = parse_event(event)
    size = head_existing_object(ref)
    label = str(ref)
    _check_object_size(ref, size, settings)
    data = read_object(ref, settings)
    png, source = normalize_image(
        data, label, settings["output_max_side"], settings["max_image_pixels"]
    )
    logger.info("Image serialized", extra={"object": label, "source": source, "png": len(png)})
    metrics.add_metric(name="ImagesSerialized", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="SourceImageBytes", unit=MetricUnit.Bytes, value=len(data))
    return SerializedImage(
        s3_bucket=ref.bucket,
        s3_key=ref.key,
        image_data=base64.b64encode(png).decode("ascii"),
        content_type=OUTPUT_CONTENT_TYPE,
        source=source,
    )


@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)  # the output holds the base64 PNG
@logger.inject_lambda_context
def lambda_handler(
    event: SerializeRequest | EventBridgeS3Event, context: LambdaContext
) -> SerializedImage:
    settings = load_settings()
    try:
        return serialize_object(event, settings)
    except (InvalidInput, ImageNotFound, InvalidImage, ImageTooLarge) as error:
        metrics.add_metric(name="ImagesRejected", unit=MetricUnit.Count, value=1)
        logger.warning("Image rejected", extra={"error": type(error).__name__, "cause": str(error)})
        raise
