"""``python -m emulator serve``: a model over the SageMaker runtime protocol on 127.0.0.1."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from emulator.commands.shared import add_capture_dir, add_command, model_option

HELP = "serve a model on 127.0.0.1 until interrupted"
DESCRIPTION = (
    "Serve PATH (a model.tar.gz or a model record JSON) through its code/inference.py, as the "
    "SageMaker PyTorch container does."
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(commands, "serve", run, HELP, DESCRIPTION, [model_option()])
    parser.add_argument("--port", type=int, required=True, metavar="N", help="TCP port")
    parser.add_argument(
        "--endpoint-name", help="answer only this endpoint name (default: any name)"
    )
    add_capture_dir(parser, "write SageMaker data capture JSONL under DIR")
    parser.add_argument(
        "--sampling-percentage",
        type=int,
        default=100,
        help="data capture sampling percentage (default: 100)",
    )


def run(args: argparse.Namespace) -> int:
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
