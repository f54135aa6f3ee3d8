"""The two events serialize_image accepts, and the S3 object (and version) each one names."""

from __future__ import annotations

from typing import Any, NamedTuple, TypedDict

from serialize_errors import InvalidInput


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
