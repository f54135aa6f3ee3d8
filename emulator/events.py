"""S3 "Object Created" events to EventBridge rules, as AWS delivers them.

``object_created_event`` builds the event S3 sends to EventBridge; ``matches`` is EventBridge's
pattern matching (exact values, ``prefix``, ``suffix``, ``anything-but``, ``exists``,
``equals-ignore-case``, ``wildcard``, ``numeric``); ``s3_object_created_hook`` hooks moto's S3
notifications (``moto.s3.notifications.send_event``, called for every object moto's S3
creates) so that any upload to a bucket with EventBridge notifications enabled reaches a
callback, whichever client made it.
"""

from __future__ import annotations

import fnmatch
import operator
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from emulator.errors import MotoPatchError, TemplateError

_REASONS = {
    "Put": "PutObject",
    "Post": "POST Object",
    "Copy": "CopyObject",
    "CompleteMultipartUpload": "CompleteMultipartUpload",
}
_NUMERIC = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}


def object_created_event(
    bucket: str,
    key: str,
    size: int,
    etag: str,
    version_id: str | None,
    reason: str,
    region: str,
    account: str,
) -> dict[str, Any]:
    """The EventBridge event of an S3 object creation (keys are not URL-encoded)."""
    detail_object: dict[str, Any] = {"key": key, "size": size, "etag": etag.strip('"')}
    if version_id and version_id != "null":
        detail_object["version-id"] = version_id
    detail_object["sequencer"] = uuid.uuid4().hex[:18].upper()
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": detail_object,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": account,
            "source-ip-address": "127.0.0.1",
            "reason": reason,
        },
    }


_MISSING = object()


def _matches_rule(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return value is not _MISSING and value == rule
    ((name, argument),) = rule.items()
    if name == "exists":
        return (value is not _MISSING) == bool(argument)
    if value is _MISSING:
        return False
    if name == "prefix":
        return isinstance(value, str) and value.startswith(_text(argument))
    if name == "suffix":
        return isinstance(value, str) and value.endswith(_text(argument))
    if name == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == argument.lower()
    if name == "wildcard":
        return isinstance(value, str) and fnmatch.fnmatchcase(value, argument)
    if name == "anything-but":
        if isinstance(argument, dict):
            return not _matches_rule(argument, value)
        excluded = argument if isinstance(argument, list) else [argument]
        return value not in excluded
    if name == "numeric":
        if not isinstance(value, int | float):
            return False
        pairs = zip(argument[::2], argument[1::2], strict=True)
        return all(_NUMERIC[op](value, bound) for op, bound in pairs)
    raise TemplateError(f"event pattern operator {name!r} is not emulated")


def _text(argument: Any) -> str:
    if isinstance(argument, dict) and "equals-ignore-case" in argument:
        raise TemplateError("case-insensitive prefix/suffix is not emulated")
    return str(argument)


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether ``event`` matches the EventBridge ``pattern``."""
    for field, rule in pattern.items():
        value = event.get(field, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(rule, dict):
            if not isinstance(value, dict) or not matches(rule, value):
                return False
            continue
        values = value if isinstance(value, list) else [value]
        if not any(_matches_rule(item, candidate) for item in rule for candidate in values):
            return False
    return True


ObjectCreatedCallback = Callable[[str, str, int, str, "str | None", str], None]
_hook_lock = threading.Lock()


@contextmanager
def s3_object_created_hook(callback: ObjectCreatedCallback) -> Iterator[None]:
    """Call ``callback(bucket, key, size, etag, version_id, reason)`` after each creation in
    a moto bucket whose notification configuration enables EventBridge."""
    try:
        from moto.s3 import notifications
    except ImportError as error:
        raise MotoPatchError(f"moto.s3.notifications moved: {error}") from error
    original = getattr(notifications, "send_event", None)
    if original is None or getattr(original, "_local_mode_hook", False):
        raise MotoPatchError(
            "moto.s3.notifications.send_event is missing or already hooked: "
            "port emulator/events.py to this moto"
        )

    def send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        original(account_id, event_name, bucket, key)
        name = getattr(event_name, "value", str(event_name))
        configuration = bucket.notification_configuration
        if not name.startswith("s3:ObjectCreated:") or configuration is None:
            return
        if getattr(configuration, "event_bridge", None) is None:
            return
        reason = _REASONS.get(name.rsplit(":", 1)[1], name.rsplit(":", 1)[1])
        callback(bucket.name, key.name, key.size, key.etag, key.version_id, reason)

    send_event._local_mode_hook = True  # type: ignore[attr-defined]
    with _hook_lock:
        notifications.send_event = send_event
    try:
        yield
    finally:
        with _hook_lock:
            notifications.send_event = original
