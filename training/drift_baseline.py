"""The drift monitor's baseline, which training writes beside the model record.

    <output>/model-record.json     the model record (training/record.py)
    <output>/drift-baseline.json   this file (``DRIFT_BASELINE_FILE`` in stacks/names.py)

The file is found by name in the record's folder; the record does not name it. It is the
baseline of the record's evaluation (``evaluation.baseline``: the test split's figures, or
the held-out photos' when training had ``--images``) at ``evaluation.recommended_threshold``,
in the schema the monitor reads and validates (``lambda_src/drift_monitor/baseline_file.py``).
Synth uploads its JSON to the monitor's ``DRIFT_BASELINE_KEY``; the local mode's ``drift``
command reads it too.

A record without the file beside it (one written before training wrote the file) still
synthesizes, with a warning: no baseline is uploaded and the deployed monitor fails with
``BaselineNotFound``. Write the file for such a record, if it has an ``evaluation.baseline``::

    python -m training.drift_baseline build/model/model-record.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from stacks.names import DRIFT_BASELINE_FILE
from training.record import read_json

SCHEMA = "scones-drift-baseline/1"  # the monitor's BASELINE_SCHEMA
MODEL_FIELDS = ("training_job_name", "model_data_url", "created_at")
SAMPLES = ("top_confidences", "brightness", "width", "height")


class DriftBaselineError(ValueError):
    """The model record has no evaluation baseline, or one the monitor could not read."""


def build_baseline(record: dict[str, Any]) -> dict[str, Any]:
    """The baseline file's content: the record's ``evaluation.baseline`` and threshold."""
    evaluation = record.get("evaluation") if isinstance(record, dict) else None
    source = evaluation.get("baseline") if isinstance(evaluation, dict) else None
    if not isinstance(source, dict):
        raise DriftBaselineError("the model record has no evaluation.baseline (train again?)")
    samples = {name: source.get(name) for name in SAMPLES}
    for name, values in samples.items():
        if not isinstance(values, list) or not values or not all(map(_is_number, values)):
            raise DriftBaselineError(f"evaluation.baseline needs a non-empty list {name!r}")
    threshold = evaluation.get("recommended_threshold")
    if not _is_number(threshold) or not 0.0 < threshold <= 1.0:
        raise DriftBaselineError(f"evaluation.recommended_threshold {threshold!r} not in (0, 1]")
    if not isinstance(source.get("predicted_class_mix"), dict):
        raise DriftBaselineError("evaluation.baseline needs a predicted_class_mix object")
    return {
        "schema": SCHEMA,
        "model": {name: record.get(name) for name in MODEL_FIELDS},
        "confidence_threshold": threshold,
        "top_confidences": [float(v) for v in samples["top_confidences"]],
        "brightness": [float(v) for v in samples["brightness"]],
        "width": [int(v) for v in samples["width"]],
        "height": [int(v) for v in samples["height"]],
        "predicted_class_mix": source["predicted_class_mix"],
        "low_confidence_rate": source.get("low_confidence_rate"),
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def baseline_path(record_path: Path) -> Path:
    """Where the baseline of the record at ``record_path`` is: beside it."""
    return record_path.with_name(DRIFT_BASELINE_FILE)


def write_baseline(record_path: Path, record: dict[str, Any] | None = None) -> Path:
    """Write the baseline of ``record`` (default: the one at ``record_path``) beside it."""
    if record is None:
        record = read_json(record_path)
    path = baseline_path(record_path)
    path.write_text(json.dumps(build_baseline(record), indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m training.drift_baseline MODEL_RECORD", file=sys.stderr)
        return 2
    try:
        print(f"drift baseline: {write_baseline(Path(arguments[0]))}")
    except (OSError, ValueError) as error:  # DriftBaselineError, or a record not JSON
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
