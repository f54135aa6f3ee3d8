"""SageMaker data capture, written the way a real endpoint writes it.

One JSON object per line, compact separators, several lines per file:
``{"captureData": {"endpointInput": {...}, "endpointOutput": {...}}, "eventMetadata": {...},
"eventVersion": "0"}``. Payloads whose content type is listed as JSON (or CSV) are stored as
text with ``encoding`` ``JSON`` (``CSV``); everything else is base64 with ``BASE64``. Files go
to ``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<mmm>-<uuid>.jsonl``, in a local
directory that mirrors the bucket, in an S3 bucket (moto in local mode), or both.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_JSON_CONTENT_TYPES = ("application/json",)
DEFAULT_CSV_CONTENT_TYPES = ("text/csv",)


@dataclass(frozen=True)
class CaptureConfig:
    """What the endpoint config's ``DataCaptureConfig`` says, plus where to write locally.

    ``sampling_percentage`` is ``InitialSamplingPercentage`` (0-100); ``key_prefix`` is the
    key part of ``DestinationS3Uri``; ``local_dir`` mirrors the bucket on disk;
    ``s3_bucket`` is written through a boto3 S3 client (moto's, in local mode).
    """

    sampling_percentage: int = 100
    key_prefix: str = "data-capture"
    local_dir: Path | None = None
    s3_bucket: str | None = None
    capture_input: bool = True
    capture_output: bool = True
    json_content_types: tuple[str, ...] = DEFAULT_JSON_CONTENT_TYPES
    csv_content_types: tuple[str, ...] = DEFAULT_CSV_CONTENT_TYPES
    flush_records: int = 10
    flush_seconds: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.sampling_percentage <= 100:
            raise ValueError(
                f"sampling_percentage must be within 0-100, got {self.sampling_percentage}"
            )
        if self.local_dir is None and self.s3_bucket is None:
            raise ValueError("data capture needs a local_dir, an s3_bucket, or both")
        if self.flush_records < 1:
            raise ValueError(f"flush_records must be at least 1, got {self.flush_records}")


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


@dataclass
class _Buffer:
    opened: datetime
    lines: list[str] = field(default_factory=list)


class CaptureWriter:
    """Samples, formats and writes capture records; flushes by count, age and on close."""

    def __init__(
        self,
        config: CaptureConfig,
        endpoint_name: str,
        variant_name: str,
        s3_client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.config = config
        self.endpoint_name = endpoint_name
        self.variant_name = variant_name
        self._s3_client_factory = s3_client_factory
        self._s3_client: Any = None
        self._random = random.Random(config.seed)
        self._lock = threading.Lock()
        self._buffer: _Buffer | None = None
        self._written: list[str] = []
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_periodically, name="capture-flusher", daemon=True
        )
        self._flusher.start()

    @property
    def written_keys(self) -> list[str]:
        """Keys (relative to the bucket or the local directory) of every file written."""
        with self._lock:
            return list(self._written)

    def sampled(self) -> bool:
        """One draw per request, as the endpoint does with its sampling percentage."""
        with self._lock:
            return self._random.uniform(0, 100) < self.config.sampling_percentage

    def record(
        self,
        input_body: bytes,
        input_content_type: str,
        output_body: bytes,
        output_content_type: str,
        inference_id: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Buffer one capture record for a request that was sampled; return the record."""
        when = now or datetime.now(UTC)
        capture_data: dict[str, Any] = {}
        if self.config.capture_input:
            capture_data["endpointInput"] = self._entry(input_body, input_content_type, "INPUT")
        if self.config.capture_output:
            capture_data["endpointOutput"] = self._entry(output_body, output_content_type, "OUTPUT")
        metadata = {
            "eventId": str(uuid.uuid4()),
            "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if inference_id:
            metadata["inferenceId"] = inference_id
        record = {"captureData": capture_data, "eventMetadata": metadata, "eventVersion": "0"}
        line = json.dumps(record, separators=(",", ":"))
        with self._lock:
            if self._buffer is not None and (
                self._buffer.opened.strftime("%Y%m%d%H") != when.strftime("%Y%m%d%H")
            ):
                self._flush_locked()
            if self._buffer is None:
                self._buffer = _Buffer(opened=when)
            self._buffer.lines.append(line)
            if len(self._buffer.lines) >= self.config.flush_records:
                self._flush_locked()
        return record

    def flush(self) -> None:
        """Write whatever is buffered now."""
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        """Stop the periodic flusher and write the rest."""
        self._stop.set()
        self._flusher.join()
        self.flush()

    def _entry(self, body: bytes, content_type: str, mode: str) -> dict[str, str]:
        media_type = _media_type(content_type)
        if media_type in self.config.json_content_types:
            data, encoding = body.decode("utf-8"), "JSON"
        elif media_type in self.config.csv_content_types:
            data, encoding = body.decode("utf-8"), "CSV"
        else:
            data, encoding = base64.b64encode(body).decode("ascii"), "BASE64"
        return {
            "observedContentType": content_type,
            "mode": mode,
            "data": data,
            "encoding": encoding,
        }

    def _flush_periodically(self) -> None:
        while not self._stop.wait(self.config.flush_seconds):
            self.flush()

    def _flush_locked(self) -> None:
        buffer, self._buffer = self._buffer, None
        if buffer is None or not buffer.lines:
            return
        opened = buffer.opened
        name = f"{opened:%M-%S}-{opened.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
        key = "/".join(
            part
            for part in (
                self.config.key_prefix.strip("/"),
                self.endpoint_name,
                self.variant_name,
                f"{opened:%Y/%m/%d/%H}",
                name,
            )
            if part
        )
        payload = ("\n".join(buffer.lines) + "\n").encode("utf-8")
        if self.config.local_dir is not None:
            path = self.config.local_dir / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(payload)
        if self.config.s3_bucket is not None:
            if self._s3_client is None:
                self._s3_client = self._make_s3_client()
            self._s3_client.put_object(
                Bucket=self.config.s3_bucket,
                Key=key,
                Body=payload,
                ContentType="application/jsonl",
            )
        self._written.append(key)

    def _make_s3_client(self) -> Any:
        if self._s3_client_factory is not None:
            return self._s3_client_factory()
        import boto3

        return boto3.client("s3")


def read_capture_file(path: Path) -> list[dict[str, Any]]:
    """Parse every line of one capture file (the format above)."""
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
