"""What the commands share: their options (``--model``, ``--cdk-out``, ``--log``,
``--capture-dir``), and for those that run the local workflow the model record and the
assembly, results on the real stdout, everything else in ``--log``."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from emulator.errors import EmulatorError

if TYPE_CHECKING:
    from emulator.workflow import LocalWorkflow


def add_command(
    commands: argparse._SubParsersAction,
    name: str,
    run: Callable[[argparse.Namespace], int],
    help: str,
    description: str,
    parents: list[argparse.ArgumentParser] | None = None,
) -> argparse.ArgumentParser:
    """The subcommand ``name``, which ``run`` carries out; ``help`` is its line in the list
    of commands, ``description`` its own ``--help``."""
    parser = commands.add_parser(name, parents=parents or [], help=help, description=description)
    parser.set_defaults(handler=run)
    return parser


def model_option(
    help: str = "model.tar.gz, or the model record JSON that training writes",
) -> argparse.ArgumentParser:
    """``--model``, the artifact or record to serve (or to read)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--model", type=Path, required=True, metavar="PATH", help=help)
    return parent


def workflow_options() -> list[argparse.ArgumentParser]:
    """``--model``, and the assembly (``--cdk-out``) and log (``--log``) of the local workflow."""
    assembly = argparse.ArgumentParser(add_help=False)
    assembly.add_argument(
        "--cdk-out",
        type=Path,
        metavar="DIR",
        help="use this synthesized assembly (default: synthesize, cached)",
    )
    assembly.add_argument(
        "--log", type=Path, metavar="FILE", help="append the handlers' logs here (default: temp)"
    )
    return [model_option(), assembly]


def add_capture_dir(parser: argparse.ArgumentParser, help: str, required: bool = False) -> None:
    parser.add_argument("--capture-dir", type=Path, required=required, metavar="DIR", help=help)


@contextmanager
def results_stdout(log_path: Path | None) -> Iterator[TextIO]:
    """Keep the real stdout for results; everything else printed (Lambda logs, metrics)
    goes to ``log_path`` (or stderr), as Lambda output goes to CloudWatch."""
    real = sys.stdout
    log = log_path.open("a") if log_path is not None else sys.stderr
    sys.stdout = log
    try:
        yield real
    finally:
        sys.stdout = real
        if log_path is not None:
            log.close()


def require_files(paths: Iterable[Path]) -> None:
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise EmulatorError(f"no such file: {', '.join(missing)}")


@contextmanager
def local_workflow(
    args: argparse.Namespace, purpose: str
) -> Iterator[tuple[TextIO, LocalWorkflow]]:
    """The results stream and the running local workflow of ``args.model``."""
    from emulator.assembly import cached_assembly, model_record_for
    from emulator.workflow import LocalWorkflow

    with tempfile.TemporaryDirectory(prefix=f"emulator-{purpose}-") as workdir:
        record = model_record_for(args.model, Path(workdir))
        assembly = args.cdk_out or cached_assembly(record)
        log_path = args.log or Path(workdir) / "lambda.log"
        with (
            results_stdout(None if args.verbose else log_path) as out,
            LocalWorkflow(assembly, record, capture_dir=args.capture_dir) as workflow,
        ):
            yield out, workflow
