"""The model record: the hand-off from training to the endpoint stack and the emulator."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from training.framework import FRAMEWORK_VERSION, PY_VERSION

RECORD_NAME = "model-record.json"
REQUIRED_FIELDS = (
    "model_data_url",
    "image_uri",
    "framework_version",
    "py_version",
    "metrics",
    "training_job_name",
    "created_at",
    "evaluation",
)
# Per-epoch history stays in metrics.json; the record carries the summary.
RECORD_METRIC_KEYS = (
    "test_accuracy",
    "val_accuracy",
    "val_loss",
    "train_loss",
    "members",
    "best_epochs",
    "epochs_run",
    "train_seconds",
    "parameters",
    "train_size",
    "validation_size",
    "test_size",
    "hyperparameters",
)


class InvalidRecord(ValueError):
    """A model record lacks a field or has one of the wrong kind."""


def summarize_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    return {key: metrics[key] for key in RECORD_METRIC_KEYS if key in metrics}


def build_record(
    model_data_url: str,
    image_uri: str,
    metrics: dict[str, Any],
    training_job_name: str,
    evaluation: dict[str, Any],
) -> dict[str, Any]:
    return {
        "model_data_url": model_data_url,
        "image_uri": image_uri,
        "framework_version": FRAMEWORK_VERSION,
        "py_version": PY_VERSION,
        "metrics": summarize_metrics(metrics),
        "training_job_name": training_job_name,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "evaluation": evaluation,
    }


def validate_record(record: dict[str, Any]) -> dict[str, Any]:
    missing = [name for name in REQUIRED_FIELDS if name not in record]
    if missing:
        raise InvalidRecord(f"model record lacks {', '.join(missing)}")
    url = record["model_data_url"]
    if not isinstance(url, str) or not (url.startswith("s3://") or Path(url).is_absolute()):
        raise InvalidRecord(f"model_data_url {url!r} is neither s3://... nor an absolute path")
    if not isinstance(record["metrics"], dict) or not isinstance(record["evaluation"], dict):
        raise InvalidRecord("metrics and evaluation must be JSON objects")
    return record


def write_record(path: Path, record: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(validate_record(record), indent=2) + "\n")
    return path


def read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InvalidRecord(f"cannot read model record {path}: {error}") from error
    return validate_record(record)
