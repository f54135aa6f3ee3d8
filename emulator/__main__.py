"""``python -m emulator``: the local mode's commands (serve, classify, batch, demo, drift,
shifted-batch; batch lives in ``emulator.batch_command``)."""

# ruff: noqa: E402  (the environment is set before the imports it affects)

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no spinning on 2 cores

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from emulator.batch_command import add_batch_parser
from emulator.cli_workflow import local_workflow, require_files, results_stdout
from emulator.errors import EmulatorError

DEFAULT_DRIFT_REPORT_ROOT = Path("build/local-mode/drift")
SHIFT_NAMES = ("clean", "dark", "blur", "rotate")

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
    require_files(args.files)
    with local_workflow(args, "classify") as (out, workflow):
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


def cmd_drift(args: argparse.Namespace) -> int:
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
    report_dir = args.report_dir or DEFAULT_DRIFT_REPORT_ROOT / datetime.now(UTC).strftime(
        "%Y%m%d-%H%M%S-%f"
    )
    report = analyse_capture_dir(args.model, args.capture_dir, settings, report_dir)
    print(json.dumps(report))
    return 0


def cmd_shifted_batch(args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from emulator.demo import stage
    from emulator.drift import make_batch, send_batch, test_split_images
    from training.stage_data import StagingError

    if args.count < 1:
        raise EmulatorError(f"--count {args.count} is not at least 1")
    try:
        data_root = stage(args.archive, args.data_dir)
    except StagingError as error:
        raise EmulatorError(f"staging failed: {error}") from error
    images = make_batch(test_split_images(data_root), args.shift, args.count, args.seed)
    started = time.perf_counter()
    with local_workflow(args, "shifted") as (out, workflow):
        summary = send_batch(
            workflow,
            images,
            progress=lambda items: tqdm(
                items, desc=f"{args.shift} batch", unit="image", file=sys.stderr
            ),
        )
        summary.update(
            shift=args.shift,
            seed=args.seed,
            capture_dir=str(args.capture_dir),
            seconds=round(time.perf_counter() - started, 1),
        )
        out.write(json.dumps(summary) + "\n")
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
    model_option = argparse.ArgumentParser(add_help=False)
    model_option.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="PATH",
        help="model.tar.gz, or the model record JSON that training writes",
    )
    assembly_options = argparse.ArgumentParser(add_help=False)
    assembly_options.add_argument(
        "--cdk-out",
        type=Path,
        metavar="DIR",
        help="use this synthesized assembly (default: synthesize, cached)",
    )
    assembly_options.add_argument(
        "--log", type=Path, metavar="FILE", help="append the handlers' logs here (default: temp)"
    )

    serve = commands.add_parser(
        "serve",
        parents=[model_option],
        help="serve a model on 127.0.0.1 until interrupted",
        description="Serve PATH (a model.tar.gz or a model record JSON) through its "
        "code/inference.py, as the SageMaker PyTorch container does.",
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
        parents=[model_option, assembly_options],
        help="run files through the local workflow, one JSON line each",
        description="Upload each FILE under the bucket's incoming/ prefix, let the workflow "
        "the app synthesizes run, print {file, s3_key, status, label, confidence, "
        "inferences, error, cause, duration_ms} per file. Exit 0 when every file got an "
        "outcome (FAILED included).",
    )
    classify.add_argument(
        "--capture-dir",
        type=Path,
        metavar="DIR",
        help="also keep the endpoint's data capture under DIR",
    )
    classify.add_argument("files", type=Path, nargs="+", metavar="FILE")
    classify.set_defaults(handler=cmd_classify)
    add_batch_parser(commands, [model_option, assembly_options])

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

    drift = commands.add_parser(
        "drift",
        help="drift report of a capture folder against the model's baseline",
        description="Read every line of every .jsonl capture file under DIR (the layout "
        "classify --capture-dir writes), compare the top-class confidence and the input "
        "brightness with the test-split baseline in the model record (two-sample "
        "Kolmogorov-Smirnov test per feature: drift when D > --threshold with p < 0.01 / "
        "features), write report.json and PNG plots, print the report as one JSON object.",
    )
    drift.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="PATH",
        help="the model record JSON (with drift-baseline.json beside it), or a model.tar.gz "
        "next to one",
    )
    drift.add_argument(
        "--capture-dir", type=Path, required=True, metavar="DIR", help="the capture folder"
    )
    drift.add_argument(
        "--threshold",
        type=float,
        help="KS statistic D above which a feature drifts (default: the monitor's, 0.2)",
    )
    drift.add_argument(
        "--confidence-threshold",
        type=float,
        help="the workflow's threshold, for the low-confidence rate (default: the record's "
        "recommended threshold)",
    )
    drift.add_argument(
        "--min-records",
        type=int,
        help="fewest records for a verdict (default: the monitor's, 30)",
    )
    drift.add_argument(
        "--report-dir",
        type=Path,
        metavar="DIR",
        help="where report.json and the plots go (default: build/local-mode/drift/<time>)",
    )
    drift.set_defaults(handler=cmd_drift)

    shifted = commands.add_parser(
        "shifted-batch",
        parents=[model_option, assembly_options],
        help="send clean or shifted test images through the local workflow, with capture",
        description="Draw --count images from the staged test split (with replacement, "
        "seeded), shift them (dark: 40%% brightness, blur: Gaussian 1.5 px, rotate: 90 "
        "degrees, clean: unchanged), upload each under incoming/ of the local workflow and "
        "keep the endpoint's data capture under --capture-dir. Prints one JSON summary.",
    )
    shifted.add_argument("--shift", choices=SHIFT_NAMES, required=True, help="the change")
    shifted.add_argument("--count", type=int, default=200, help="images (default: 200)")
    shifted.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    shifted.add_argument(
        "--capture-dir", type=Path, required=True, metavar="DIR", help="keep the capture here"
    )
    shifted.add_argument(
        "--archive",
        type=Path,
        metavar="PATH",
        help="CIFAR-100 archive to stage the test split from when --data-dir has none",
    )
    shifted.add_argument(
        "--data-dir",
        type=Path,
        default=Path("build/data"),
        metavar="DIR",
        help="staged images, DIR/test/{bicycle,motorcycle}/*.png (default: build/data)",
    )
    shifted.set_defaults(handler=cmd_shifted_batch)
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
