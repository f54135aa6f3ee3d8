"""Read the object an event names from S3: HeadObject, then GetObject, both size-checked.

Only reads: the object is never written, deleted or altered. Traced with the function's
Tracer (Powertools shares one configuration between every ``Tracer()`` of a process).
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from aws_lambda_powertools import Tracer
from botocore.exceptions import ClientError
from s3_event import ObjectRef
from serialize_errors import AccessDenied, ImageNotFound, ImageTooLarge, InvalidImage
from serialize_settings import Settings

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound"})
_ACCESS_DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})

tracer = Tracer()


@functools.cache
def s3_client() -> Any:
    """One S3 client per process, built from the environment (AWS_ENDPOINT_URL_S3 included)."""
    return boto3.client("s3")


def _version(ref: ObjectRef) -> dict[str, str]:
    return {"VersionId": ref.version_id} if ref.version_id else {}


def _not_found_message(ref: ObjectRef) -> str:
    if ref.version_id:
        return f"{ref} no longer exists: it was deleted after the event"
    return f"{ref} no longer exists, or never existed"


def _access_denied(operation: str, ref: ObjectRef) -> AccessDenied:
    return AccessDenied(
        f"access denied: S3 refused {operation} of {ref} to this function's role; "
        "grant it s3:GetObject on the key's prefix (and kms:Decrypt on the bucket's key)"
    )


def _raise_if_missing_or_denied(operation: str, ref: ObjectRef, error: ClientError) -> None:
    """Raise ImageNotFound or AccessDenied for the codes that mean them; else return."""
    code = error.response.get("Error", {}).get("Code")
    if code in _NOT_FOUND_CODES:
        raise ImageNotFound(_not_found_message(ref)) from error
    if code in _ACCESS_DENIED_CODES:
        raise _access_denied(operation, ref) from error


def check_object_size(ref: ObjectRef, size: int, settings: Settings) -> None:
    if size == 0:
        raise InvalidImage(f"{ref} is empty")
    if size > settings.max_object_bytes:
        raise ImageTooLarge(
            f"{ref} has {size} bytes, more than MAX_OBJECT_BYTES={settings.max_object_bytes}"
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
        _raise_if_missing_or_denied("HeadObject", ref, error)
        raise
    return int(head["ContentLength"])


@tracer.capture_method(capture_response=False)  # the object's bytes, up to 20 MB
def read_object(ref: ObjectRef, settings: Settings) -> bytes:
    """Read the object, checking its size again: it may have changed since HeadObject."""
    try:
        response = s3_client().get_object(Bucket=ref.bucket, Key=ref.key, **_version(ref))
    except ClientError as error:
        _raise_if_missing_or_denied("GetObject", ref, error)
        raise
    body = response["Body"]
    try:
        check_object_size(ref, int(response["ContentLength"]), settings)
        data = body.read(settings.max_object_bytes + 1)
    finally:
        body.close()
    check_object_size(ref, len(data), settings)
    return data
