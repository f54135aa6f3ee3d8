"""``python -m emulator drift``: the drift monitor over a capture folder, one JSON report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emulator.commands.shared import add_capture_dir, add_command, model_option
from emulator.errors import EmulatorError

DEFAULT_REPORT_ROOT = Path("build/local-mode/drift")
HELP = "drift report of a capture folder against the model's baseline"
DESCRIPTION = (
    "Read every line of every .jsonl capture file under DIR (the layout classify --capture-dir "
    "writes), compare the top-class confidence and the input brightness with the test-split "
    "baseline in the model record (two-sample Kolmogorov-Smirnov test per feature: drift when "
    "D > --threshold with p < 0.01 / features), write report.json and PNG plots, print the "
    "report as one JSON object."
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    model = model_option(
        "the model record JSON (with drift-baseline.json beside it), or a model.tar.gz next to one"
    )
    parser = add_command(commands, "drift", run, HELP, DESCRIPTION, [model])
    add_capture_dir(parser, "the capture folder", required=True)
    parser.add_argument(
        "--threshold",
        type=float,
        help="KS statistic D above which a feature drifts (default: the monitor's, 0.2)",
    )
    parser.add_argument(
        "--confidence-threshold",
        type=float,
        help="the workflow's threshold, for the low-confidence rate (default: the record's "
        "recommended threshold)",
    )
    parser.add_argument(
        "--min-records",
        type=int,
        help="fewest records for a verdict (default: the monitor's, 30)",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        metavar="DIR",
        help=f"where report.json and the plots go (default: {DEFAULT_REPORT_ROOT}/<time>)",
    )


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from emulator.drift import DriftSettings, analyse_capture_dir

    defaults = DriftSettings()
    settings = DriftSettings(
        drift_threshold=defaults.drift_threshold if args.threshold is None else args.threshold,
        confidence_threshold=args.confidence_threshold,
        min_records=defaults.min_records if args.min_records is None else args.min_records,
    )
    if not 0.0 < settings.drift_threshold < 1.0:
        raise EmulatorError(f"--threshold {args.threshold} is not a KS statistic in (0, 1)")
    if args.confidence_threshold is not None and not 0.0 < args.confidence_threshold <= 1.0:
        raise EmulatorError(f"--confidence-threshold {args.confidence_threshold} is not in (0, 1]")
    if settings.min_records < 1:
        raise EmulatorError(f"--min-records {args.min_records} is not at least 1")
    report_dir = args.report_dir or DEFAULT_REPORT_ROOT / datetime.now(UTC).strftime(
        "%Y%m%d-%H%M%S-%f"
    )
    report = analyse_capture_dir(args.model, args.capture_dir, settings, report_dir)
    print(json.dumps(report))
    return 0
