"""S3 "Object Created" events to EventBridge rules, as AWS delivers them.

``object_created_event`` builds the event S3 sends to EventBridge (``S3EventSource`` numbers
them per key as S3 does), with the fields of
https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html (not moto's own variant:
``eTag``, reason ``ObjectCreated``, a fixed sequencer). The key is the object's key as stored:
S3 URL-encodes keys in its SQS/SNS/Lambda notifications, not in the EventBridge event.
``RulePattern`` matches events with moto's own ``EventPattern``. ``s3_object_created_hook``
hooks moto's S3 notifications (``moto.s3.notifications.send_event``, called for every object
moto's S3 creates) so that any upload to a bucket with EventBridge notifications enabled
reaches a callback, whichever client made it. ``check_moto_compatibility`` fails loudly when a
moto upgrade moves either.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from emulator.errors import MotoPatchError, TemplateError, require_parameters

REASONS = {
    "Put": "PutObject",
    "Post": "POST Object",
    "Copy": "CopyObject",
    "CompleteMultipartUpload": "CompleteMultipartUpload",
}
# The operators moto's EventPattern implements; it lets any other one match everything.
PATTERN_OPERATORS = frozenset(
    {
        "prefix",
        "suffix",
        "equals-ignore-case",
        "anything-but",
        "numeric",
        "exists",
        "cidr",
        "wildcard",
    }
)
EXPECTED_SEND_EVENT_PARAMETERS = ("account_id", "event_name", "bucket", "key")
_REQUEST_ID_ALPHABET = string.ascii_uppercase + string.digits


class Sequencer:
    """S3's ``sequencer``: a hex string that grows with each event on the same bucket and key."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def next(self, bucket: str, key: str) -> str:
        with self._lock:
            value = max(time.time_ns(), self._last.get((bucket, key), 0) + 1)
            self._last[(bucket, key)] = value
        return f"{value:018X}"


def object_created_event(
    bucket: str,
    key: str,
    size: int,
    etag: str,
    version_id: str | None,
    reason: str,
    region: str,
    account: str,
    sequencer: str,
) -> dict[str, Any]:
    """The EventBridge event of an S3 object creation; ``version-id`` only when versioned."""
    detail_object: dict[str, Any] = {"key": key, "size": size, "etag": etag.strip('"')}
    if version_id and version_id != "null":
        detail_object["version-id"] = version_id
    detail_object["sequencer"] = sequencer
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
            "event-version": "1.1",
            "bucket": {"name": bucket},
            "object": detail_object,
            "request-id": "".join(secrets.choice(_REQUEST_ID_ALPHABET) for _ in range(16)),
            "requester": account,
            "source-ip-address": "127.0.0.1",
            "reason": reason,
        },
    }


class S3EventSource:
    """The events S3 sends to EventBridge for one account and region, in the order S3 would
    sequence them: ``object_created`` takes what ``s3_object_created_hook`` reports."""

    def __init__(self, region: str, account: str) -> None:
        self.region = region
        self.account = account
        self._sequencer = Sequencer()

    def object_created(
        self, bucket: str, key: str, size: int, etag: str, version_id: str | None, reason: str
    ) -> dict[str, Any]:
        sequencer = self._sequencer.next(bucket, key)
        return object_created_event(
            bucket, key, size, etag, version_id, reason, self.region, self.account, sequencer
        )


def _event_pattern_class() -> type:
    try:
        from moto.events.models import EventPattern
    except ImportError as error:
        raise MotoPatchError(
            f"moto.events.models.EventPattern moved: port emulator/events.py ({error})"
        ) from error
    return EventPattern


def _pattern_operators(pattern: dict[str, Any]) -> Iterator[str]:
    for name, value in pattern.items():
        if name == "$or":
            for alternative in value:
                yield from _pattern_operators(alternative)
        elif isinstance(value, dict):
            yield from _pattern_operators(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    yield from _filter_operators(item)


def _filter_operators(item: dict[str, Any]) -> Iterator[str]:
    for operator, argument in item.items():
        yield operator
        if isinstance(argument, dict):
            yield from _filter_operators(argument)


class RulePattern:
    """An EventBridge rule's ``EventPattern``, matched by moto's ``EventPattern``."""

    def __init__(self, pattern: dict[str, Any]) -> None:
        unknown = sorted(set(_pattern_operators(pattern)) - PATTERN_OPERATORS)
        if unknown:
            raise TemplateError(f"event pattern operators {unknown} are not emulated")
        self.pattern = pattern
        self._moto = _event_pattern_class().load(json.dumps(pattern))

    def matches(self, event: dict[str, Any]) -> bool:
        return self._moto.matches_event(event)


def check_moto_compatibility() -> None:
    """Raise ``MotoPatchError`` unless moto still has what this module wraps and hooks."""
    pattern_class = _event_pattern_class()
    for name in ("load", "matches_event"):
        if not callable(getattr(pattern_class, name, None)):
            raise MotoPatchError(f"moto's EventPattern has no {name}(): port emulator/events.py")
    probe = RulePattern({"detail": {"$or": [{"a": [{"prefix": "x/"}]}, {"b": [1]}]}})
    verdicts = [probe.matches({"detail": detail}) for detail in ({"a": "x/1"}, {"b": 1}, {})]
    if verdicts != [True, True, False]:
        raise MotoPatchError(f"moto's EventPattern now matches differently: {verdicts}")
    try:
        from moto.s3 import notifications
    except ImportError as error:
        raise MotoPatchError(f"moto.s3.notifications moved: {error}") from error
    send_event = getattr(notifications, "send_event", None)
    if send_event is None:
        raise MotoPatchError("moto.s3.notifications.send_event is gone: port emulator/events.py")
    require_parameters(
        send_event,
        EXPECTED_SEND_EVENT_PARAMETERS,
        "moto.s3.notifications.send_event",
        "port emulator/events.py",
    )


ObjectCreatedCallback = Callable[[str, str, int, str, "str | None", str], None]
_hook_lock = threading.Lock()


@contextmanager
def s3_object_created_hook(callback: ObjectCreatedCallback) -> Iterator[None]:
    """Call ``callback(bucket, key, size, etag, version_id, reason)`` after each creation in
    a moto bucket whose notification configuration enables EventBridge."""
    check_moto_compatibility()
    from moto.s3 import notifications

    original = notifications.send_event
    if getattr(original, "_local_mode_hook", False):
        raise MotoPatchError("moto.s3.notifications.send_event is already hooked")

    def send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        original(account_id, event_name, bucket, key)
        name = getattr(event_name, "value", str(event_name))
        configuration = bucket.notification_configuration
        if not name.startswith("s3:ObjectCreated:") or configuration is None:
            return
        if getattr(configuration, "event_bridge", None) is None:
            return
        operation = name.rsplit(":", 1)[1]
        reason = REASONS.get(operation, operation)
        callback(bucket.name, key.name, key.size, key.etag, key.version_id, reason)

    send_event._local_mode_hook = True  # type: ignore[attr-defined]
    with _hook_lock:
        notifications.send_event = send_event
    try:
        yield
    finally:
        with _hook_lock:
            notifications.send_event = original
