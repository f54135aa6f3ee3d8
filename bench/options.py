"""What the benchmarks share: a parser with the script's docstring as its description, the
options of the local workflow (``--model``, ``--cdk-out``, ``--images``, ``--log``), and
``results_stdout``: results on the real stdout, the handlers' logs in ``--log``.

Imported after the script has put the repository on ``sys.path``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from emulator.commands.shared import results_stdout
from training.record import DEFAULT_PATH

__all__ = [
    "add_cdk_out",
    "add_images",
    "add_log",
    "add_model_argument",
    "add_rounds",
    "add_workflow_options",
    "bench_parser",
    "results_stdout",
]


def bench_parser(description: str | None) -> argparse.ArgumentParser:
    """The parser of a benchmark, ``description`` (its docstring) kept as written."""
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """``--model``: the artifact or record to serve, by default the one ``make demo`` trains."""
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_PATH,
        help="model.tar.gz or model record (default: build/model's record)",
    )


def add_cdk_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cdk-out", type=Path, help="a synthesized assembly (default: cached)")


def add_images(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=Path, help="folder of PNG images (default: staged test)")


def add_workflow_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--cdk-out`` and ``--images``: what a local workflow serves, and on what."""
    add_model_argument(parser)
    add_cdk_out(parser)
    add_images(parser)


def add_log(
    parser: argparse.ArgumentParser, help: str = "where the handlers' logs go (default: discarded)"
) -> None:
    """``--log``, the file ``results_stdout`` sends the handlers' output to."""
    parser.add_argument("--log", type=Path, default=Path(os.devnull), help=help)


def add_rounds(parser: argparse.ArgumentParser, name: str, rounds: int, warmup: int) -> None:
    """``name``, how many rounds are timed, and ``--warmup``, the untimed rounds before them."""
    parser.add_argument(name, type=int, default=rounds, help=f"timed rounds (default: {rounds})")
    parser.add_argument(
        "--warmup", type=int, default=warmup, help=f"untimed rounds (default: {warmup})"
    )
