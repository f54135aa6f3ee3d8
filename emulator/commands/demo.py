"""``python -m emulator demo``: stage, train once, synthesize, classify a sample, report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emulator.commands.shared import add_command, results_stdout
from emulator.errors import EmulatorError
from training.record import DEFAULT_RECORD

DEFAULT_LOG = Path("build/local-mode/demo-lambda.log")
HELP = "stage, train once, synthesize, classify a sample, report"
DESCRIPTION = (
    "Stage the CIFAR-100 bicycle/motorcycle images (the official archive, or --archive), "
    f"train locally unless {DEFAULT_RECORD} exists and is deployable (a record from an older "
    "training run is trained again), synthesize, classify a sample of the test split through "
    "the local workflow, and print a table, the accuracy and the report folder (plots)."
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(commands, "demo", run, HELP, DESCRIPTION)
    parser.add_argument(
        "--archive",
        type=Path,
        metavar="PATH",
        help="a local CIFAR-100 python archive (default: download the official)",
    )
    parser.add_argument(
        "--sample", type=int, default=40, help="test images to classify (default: 40)"
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    parser.add_argument(
        "--epochs", type=int, help="training epochs when a model is trained (default: the recipe's)"
    )
    parser.add_argument(
        "--log",
        type=Path,
        default=DEFAULT_LOG,
        help=f"handlers' logs (default: {DEFAULT_LOG})",
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from emulator.demo import run_demo
    from training.stage_data import StagingError

    args.log.parent.mkdir(parents=True, exist_ok=True)
    with results_stdout(args.log) as out:
        try:
            run_demo(
                archive=args.archive,
                sample=args.sample,
                seed=args.seed,
                epochs=args.epochs,
                out=out,
                log=sys.stderr,
                progress=lambda items: tqdm(items, desc="classify", unit="image", file=sys.stderr),
            )
        except StagingError as error:
            raise EmulatorError(f"staging failed: {error}") from error
    return 0
