"""The endpoint's data capture: the files of a window on S3, and the figures of each record.

``capture_keys`` lists every ``.jsonl`` capture file under a capture prefix in the
``<variant>/yyyy/mm/dd/hh/`` folders of the window's hours and of the hour before it (a file
opened just before the hour can hold records after it); ``read_capture`` reads each line of
them, and ``in_window`` keeps the records whose ``eventMetadata.inferenceTime`` falls in the
window (records without one are kept).

Each record becomes figures: top-class confidence and predicted class from
``captureData.endpointOutput`` (one probability per class of the model's ``class_names``, in
their order, e.g. ``[p_bicycle, p_motorcycle]``; encoding JSON, CSV or BASE64), image format,
size and brightness (mean of the RGB pixel values, 0-255) from ``captureData.endpointInput``
(BASE64 image). A batch of records knows the class names they were read with.

Blank lines are ignored. A line that is not a readable capture record raises
``MalformedCaptureRecord``; ``parse_capture_text`` counts and skips it (its source, line and
error go to ``CaptureBatch.skipped``), never fatal. A record whose input is not a decodable
image still counts for the output figures (its image fields are None).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from drift_errors import CaptureReadError, MalformedCaptureRecord
from PIL import Image, ImageStat, UnidentifiedImageError


@dataclass(frozen=True)
class CapturedInference:
    """The figures of one capture record: its probabilities are in the order of its batch's
    ``class_names``. Image fields are None when the input is missing or not a decodable
    image."""

    inference_time: datetime | None
    probabilities: tuple[float, ...]
    image_format: str | None = None
    width: int | None = None
    height: int | None = None
    brightness: float | None = None

    @property
    def top_confidence(self) -> float:
        return max(self.probabilities)

    @property
    def predicted_index(self) -> int:
        """The index of the top class (the first of a tie)."""
        return self.probabilities.index(self.top_confidence)


@dataclass
class CaptureBatch:
    """The records read from some capture files as probabilities of ``class_names``, and the
    lines skipped as malformed."""

    records: list[CapturedInference]
    skipped: list[dict[str, Any]]
    class_names: tuple[str, ...]
    files: int = 0

    def extend(self, other: CaptureBatch) -> None:
        if other.class_names != self.class_names:
            raise ValueError(f"records of {other.class_names} added to {self.class_names}")
        self.records.extend(other.records)
        self.skipped.extend(other.skipped)
        self.files += other.files


def _payload_bytes(entry: Any, name: str) -> tuple[bytes, str]:
    if not isinstance(entry, dict) or not isinstance(entry.get("data"), str):
        raise MalformedCaptureRecord(f"{name} has no string 'data'")
    encoding = str(entry.get("encoding", "")).upper()
    if encoding == "BASE64":
        try:
            return base64.b64decode(entry["data"], validate=True), encoding
        except (binascii.Error, ValueError) as error:
            raise MalformedCaptureRecord(f"{name} data is not valid BASE64: {error}") from error
    if encoding in ("JSON", "CSV"):
        return entry["data"].encode("utf-8"), encoding
    raise MalformedCaptureRecord(f"{name} encoding {entry.get('encoding')!r} is not known")


def _probabilities(output: Any, classes: int) -> tuple[float, ...]:
    body, encoding = _payload_bytes(output, "endpointOutput")
    text = body.decode("utf-8", errors="replace").strip()
    try:
        if encoding == "CSV" or not text.startswith("["):
            values = [float(part) for part in text.split(",")]
        else:
            values = json.loads(text)
    except ValueError as error:
        raise MalformedCaptureRecord(f"endpointOutput {text[:60]!r} is not a list") from error
    well_formed = (
        isinstance(values, list)
        and len(values) == classes
        and all(
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and 0.0 <= value <= 1.0
            for value in values
        )
    )
    if not well_formed:
        raise MalformedCaptureRecord(
            f"endpointOutput {text[:60]!r} is not {classes} probabilities in [0, 1]"
        )
    return tuple(float(value) for value in values)


def image_figures(body: bytes) -> tuple[str, int, int, float]:
    """Format, width, height and brightness (mean of the RGB values, 0-255) of an image."""
    with Image.open(io.BytesIO(body)) as image:
        image_format = image.format or "unknown"
        width, height = image.size
        band_means = ImageStat.Stat(image.convert("RGB")).mean
    return image_format, width, height, sum(band_means) / len(band_means)


def _inference_time(metadata: Any) -> datetime | None:
    if not isinstance(metadata, dict) or not isinstance(metadata.get("inferenceTime"), str):
        return None
    try:
        moment = datetime.fromisoformat(metadata["inferenceTime"].replace("Z", "+00:00"))
    except ValueError as error:
        raise MalformedCaptureRecord(
            f"inferenceTime {metadata['inferenceTime']!r} is not an ISO 8601 time"
        ) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_capture_record(line: str, class_names: Sequence[str]) -> CapturedInference:
    """One capture line -> its figures, a probability for each of ``class_names``;
    MalformedCaptureRecord when it cannot be read."""
    try:
        record = json.loads(line)
    except ValueError as error:
        raise MalformedCaptureRecord(f"not JSON: {error}") from error
    if not isinstance(record, dict) or not isinstance(record.get("captureData"), dict):
        raise MalformedCaptureRecord("no captureData object")
    capture = record["captureData"]
    if "endpointOutput" not in capture:
        raise MalformedCaptureRecord("captureData has no endpointOutput")
    probabilities = _probabilities(capture["endpointOutput"], len(class_names))
    moment = _inference_time(record.get("eventMetadata"))
    if "endpointInput" not in capture:
        return CapturedInference(moment, probabilities)
    body, _ = _payload_bytes(capture["endpointInput"], "endpointInput")
    try:
        image_format, width, height, brightness = image_figures(body)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return CapturedInference(moment, probabilities)
    return CapturedInference(moment, probabilities, image_format, width, height, brightness)


def parse_capture_text(text: str, source: str, class_names: tuple[str, ...]) -> CaptureBatch:
    """Every non-blank line of one capture file; malformed lines are counted, not fatal."""
    batch = CaptureBatch(records=[], skipped=[], class_names=class_names, files=1)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            batch.records.append(parse_capture_record(line, class_names))
        except MalformedCaptureRecord as error:
            batch.skipped.append({"source": source, "line": number, "error": str(error)})
    return batch


def in_window(
    records: Iterable[CapturedInference], start: datetime, end: datetime
) -> list[CapturedInference]:
    """The records inferred in [start, end); records without a time are kept."""
    return [
        record
        for record in records
        if record.inference_time is None or start <= record.inference_time < end
    ]


def hour_folders(start: datetime, end: datetime) -> list[str]:
    """The ``yyyy/mm/dd/hh/`` folders that [start, end) touches."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    folders = []
    while hour < end:
        folders.append(f"{hour:%Y/%m/%d/%H}/")
        hour += timedelta(hours=1)
    return folders


def capture_keys(s3: Any, bucket: str, prefix: str, start: datetime, end: datetime) -> list[str]:
    """Keys of the ``.jsonl`` files in every variant's hour folders of the window."""
    paginator = s3.get_paginator("list_objects_v2")
    try:
        variants = [
            common["Prefix"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
            for common in page.get("CommonPrefixes", [])
        ]
        return [
            item["Key"]
            for variant in variants
            for folder in hour_folders(start - timedelta(hours=1), end)
            for page in paginator.paginate(Bucket=bucket, Prefix=variant + folder)
            for item in page.get("Contents", [])
            if item["Key"].endswith(".jsonl")
        ]
    except ClientError as error:
        raise CaptureReadError(f"cannot list s3://{bucket}/{prefix}: {error}") from error


def read_capture(
    s3: Any, bucket: str, keys: Sequence[str], class_names: tuple[str, ...]
) -> CaptureBatch:
    batch = CaptureBatch(records=[], skipped=[], class_names=class_names)
    for key in keys:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            raise CaptureReadError(f"cannot read s3://{bucket}/{key}: {error}") from error
        text = body.decode("utf-8", errors="replace")
        batch.extend(parse_capture_text(text, key, class_names))
    return batch
