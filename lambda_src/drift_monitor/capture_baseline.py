"""Take a reviewed window of the endpoint's data capture as the drift monitor's new baseline.

    python -m lambda_src.drift_monitor.capture_baseline --capture DIR --output baseline.json \\
        --class-names bicycle,motorcycle \\
        [--start 2026-01-01T00:00:00Z --end 2026-01-08T00:00:00Z] [--threshold 0.75]

DIR holds SageMaker capture files (``*.jsonl``, any depth), e.g. copied from AWS with
``aws s3 sync s3://BUCKET/data-capture/ENDPOINT/ DIR``; only the records inferred in
[start, end) count, their probabilities in the order of ``--class-names`` (the model record's
``class_names``, as the monitor's CLASS_NAMES). The result is a baseline file in the monitor's
schema (``baseline_file.py``): the window's top-class confidences and brightness become what
later windows are compared with. Put it where the monitor reads it (``aws s3 cp baseline.json
s3://BUCKET/BASELINE_KEY``; locally, as ``drift-baseline.json`` beside the model record the
local mode's ``drift`` command is given).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The monitor's modules import one another by their own names, as in Lambda; run from the
# repository (``python -m``), this folder is what makes them importable.
FOLDER = str(Path(__file__).resolve().parent)
if FOLDER not in sys.path:
    sys.path.append(FOLDER)

from baseline_file import BASELINE_SCHEMA, validate_baseline  # noqa: E402
from capture_records import CaptureBatch, in_window, parse_capture_text  # noqa: E402
from drift_errors import ConfigurationError, InvalidBaseline  # noqa: E402
from drift_settings import class_names  # noqa: E402

DEFAULT_THRESHOLD = 0.75  # the workflow's confidence_threshold in cdk.json
FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def read_capture_folder(folder: Path, names: tuple[str, ...]) -> CaptureBatch:
    """Every record of every ``*.jsonl`` file under ``folder``, probabilities of ``names``."""
    batch = CaptureBatch(records=[], skipped=[], class_names=names)
    for path in sorted(folder.rglob("*.jsonl")):
        batch.extend(parse_capture_text(path.read_text(), str(path), names))
    return batch


def baseline_from_capture(
    batch: CaptureBatch, threshold: float, described: dict[str, Any], min_records: int = 30
) -> dict[str, Any]:
    """A baseline file from the (already windowed) capture records; ``described`` says where
    it came from. Fewer than ``min_records`` records with an image is refused."""
    records = [record for record in batch.records if record.brightness is not None]
    if len(records) < min_records:
        raise InvalidBaseline(
            f"the window has {len(records)} records with a readable image, fewer than "
            f"{min_records}: widen it"
        )
    confidences = [record.top_confidence for record in records]
    baseline = {
        "schema": BASELINE_SCHEMA,
        "model": described,
        "confidence_threshold": threshold,
        "top_confidences": [round(value, 6) for value in confidences],
        "brightness": [round(record.brightness, 3) for record in records],
        "width": [record.width for record in records],
        "height": [record.height for record in records],
        "predicted_class_mix": {
            name: sum(record.predicted_index == index for record in records) / len(records)
            for index, name in enumerate(batch.class_names)
        },
        "low_confidence_rate": sum(value < threshold for value in confidences) / len(records),
    }
    return validate_baseline(baseline)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--capture", type=Path, required=True, help="folder of capture .jsonl")
    parser.add_argument("--output", type=Path, required=True, help="baseline JSON to write")
    parser.add_argument(
        "--class-names",
        required=True,
        metavar="NAMES",
        help="the model's classes, comma-separated, in the order of its output (the model "
        "record's class_names)",
    )
    parser.add_argument("--start", type=_moment, default=FAR_PAST, help="window start (ISO)")
    parser.add_argument("--end", type=_moment, default=FAR_FUTURE, help="window end (ISO)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="confidence threshold of the low-confidence rate (default 0.75)",
    )
    args = parser.parse_args(argv)
    described = {
        "capture_window": [args.start.isoformat(), args.end.isoformat()],
        "capture_folder": str(args.capture),
    }
    try:
        batch = read_capture_folder(args.capture, class_names(args.class_names, "--class-names"))
        batch.records = in_window(batch.records, args.start, args.end)
        baseline = baseline_from_capture(batch, args.threshold, described)
    except (ConfigurationError, InvalidBaseline) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.output.write_text(json.dumps(baseline, indent=2) + "\n")
    print(f"baseline of {len(baseline['brightness'])} records in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
