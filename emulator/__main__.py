"""``python -m emulator``: the local mode's commands (serve, classify, batch, demo, drift,
shifted-batch), each in its module under ``emulator.commands``."""

# ruff: noqa: E402  (the environment is set before the imports it affects)

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no spinning on 2 cores

import argparse
import logging
import sys

from emulator.commands import COMMANDS
from emulator.commands.shifted_batch import SHIFT_NAMES
from emulator.errors import EmulatorError

__all__ = ["SHIFT_NAMES", "build_parser", "main"]

DESCRIPTION = """\
Run the Scones Unlimited workflow offline: the state machine CDK synthesizes, the real Lambda
handler files and the model's own inference code, on moto (S3, Step Functions) and a local
SageMaker runtime endpoint. No AWS account, no Docker.

commands:
  serve     serve a model over the SageMaker runtime protocol
            (POST /endpoints/<name>/invocations, GET /ping) on 127.0.0.1
  classify  upload files under incoming/ and print one JSON line per file
  batch     upload files under batch/<run>/, run the batch state machine, one line per file
  demo      stage the data, train once, classify a test sample, write a report
  drift     run the drift monitor over a capture folder against the model's baseline
  shifted-batch
            send test images, clean or shifted (dark, blur, rotate), through the workflow
"""


def _quiet_libraries(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr)
    if not verbose:
        logging.getLogger("moto").setLevel(logging.CRITICAL)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulator",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show moto's and the handlers' logs on stderr"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries(args.verbose)
    try:
        return args.handler(args)
    except EmulatorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
