"""``python -m emulator``: the local mode's commands (serve, classify, demo)."""

# ruff: noqa: E402  (the environment is set before the imports it affects)

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no spinning on 2 cores

import argparse
import json
import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from emulator.errors import EmulatorError

DESCRIPTION = """\
Run the Scones Unlimited workflow offline: the state machine CDK synthesizes, the real Lambda
handler files and the model's own inference code, on moto (S3, Step Functions) and a local
SageMaker runtime endpoint. No AWS account, no Docker.

commands:
  serve     serve a model over the SageMaker runtime protocol
            (POST /endpoints/<name>/invocations, GET /ping) on 127.0.0.1
  classify  upload files under incoming/ and print one JSON line per file
  demo      stage the data, train once, classify a test sample, write a report
"""


@contextmanager
def _results_stdout(log_path: Path | None) -> Iterator[TextIO]:
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


def _quiet_libraries(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr)
    if not verbose:
        logging.getLogger("moto").setLevel(logging.CRITICAL)


def cmd_serve(args: argparse.Namespace) -> int:
    from emulator.capture import CaptureConfig
    from emulator.endpoint import LocalEndpoint

    capture = (
        CaptureConfig(local_dir=args.capture_dir, sampling_percentage=args.sampling_percentage)
        if args.capture_dir
        else None
    )
    endpoint = LocalEndpoint(
        args.model, endpoint_name=args.endpoint_name, port=args.port, capture=capture
    )
    stopped = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stopped.set())
    with endpoint:
        name = args.endpoint_name or "<any name>"
        print(
            f"serving {args.model} at {endpoint.url}/endpoints/{name}/invocations "
            f"(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME={endpoint.url}); Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )
        stopped.wait()
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from emulator.assembly import cached_assembly, model_record_for
    from emulator.workflow import LocalWorkflow

    missing = [str(path) for path in args.files if not path.is_file()]
    if missing:
        raise EmulatorError(f"no such file: {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="emulator-classify-") as workdir:
        record = model_record_for(args.model, Path(workdir))
        assembly = args.cdk_out or cached_assembly(record)
        log_path = args.log or Path(workdir) / "lambda.log"
        with (
            _results_stdout(log_path if not args.verbose else None) as out,
            LocalWorkflow(assembly, record, capture_dir=args.capture_dir) as workflow,
        ):
            for path in args.files:
                outcome = workflow.classify(path)
                out.write(json.dumps(outcome.as_json()) + "\n")
                out.flush()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from emulator.demo import run_demo
    from training.stage_data import StagingError

    args.log.parent.mkdir(parents=True, exist_ok=True)
    with _results_stdout(args.log) as out:
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

    serve = commands.add_parser(
        "serve",
        help="serve a model on 127.0.0.1 until interrupted",
        description="Serve PATH (a model.tar.gz or a model record JSON) through its "
        "code/inference.py, as the SageMaker PyTorch container does.",
    )
    serve.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="PATH",
        help="model.tar.gz, or the model record JSON that training writes",
    )
    serve.add_argument("--port", type=int, required=True, metavar="N", help="TCP port")
    serve.add_argument("--endpoint-name", help="answer only this endpoint name (default: any name)")
    serve.add_argument(
        "--capture-dir",
        type=Path,
        metavar="DIR",
        help="write SageMaker data capture JSONL under DIR",
    )
    serve.add_argument(
        "--sampling-percentage",
        type=int,
        default=100,
        help="data capture sampling percentage (default: 100)",
    )
    serve.set_defaults(handler=cmd_serve)

    classify = commands.add_parser(
        "classify",
        help="run files through the local workflow, one JSON line each",
        description="Upload each FILE under the bucket's incoming/ prefix, let the workflow "
        "the app synthesizes run, print {file, s3_key, status, label, confidence, "
        "inferences, error, cause, duration_ms} per file. Exit 0 when every file got an "
        "outcome (FAILED included).",
    )
    classify.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="PATH",
        help="model.tar.gz, or the model record JSON that training writes",
    )
    classify.add_argument(
        "--capture-dir",
        type=Path,
        metavar="DIR",
        help="also keep the endpoint's data capture under DIR",
    )
    classify.add_argument(
        "--cdk-out",
        type=Path,
        metavar="DIR",
        help="use this synthesized assembly (default: synthesize, cached)",
    )
    classify.add_argument(
        "--log",
        type=Path,
        metavar="FILE",
        help="append the handlers' logs here (default: a temp file)",
    )
    classify.add_argument("files", type=Path, nargs="+", metavar="FILE")
    classify.set_defaults(handler=cmd_classify)

    demo = commands.add_parser(
        "demo",
        help="stage, train once, synthesize, classify a sample, report",
        description="Stage the CIFAR-100 bicycle/motorcycle images (the official archive, "
        "or --archive), train locally unless build/model/model-record.json exists, "
        "synthesize, classify a sample of the test split through the local workflow, and "
        "print a table, the accuracy and the report folder (plots).",
    )
    demo.add_argument(
        "--archive",
        type=Path,
        metavar="PATH",
        help="a local CIFAR-100 python archive (default: download the official)",
    )
    demo.add_argument(
        "--sample", type=int, default=40, help="test images to classify (default: 40)"
    )
    demo.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    demo.add_argument(
        "--epochs", type=int, help="training epochs when a model is trained (default: the recipe's)"
    )
    demo.add_argument(
        "--log",
        type=Path,
        default=Path("build/local-mode/demo-lambda.log"),
        help="handlers' logs (default: build/local-mode/demo-lambda.log)",
    )
    demo.set_defaults(handler=cmd_demo)
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
