"""``python -m emulator batch``: files through the synthesized batch state machine."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emulator.commands.shared import (
    add_capture_dir,
    add_command,
    local_workflow,
    require_files,
    workflow_options,
)
from emulator.errors import EmulatorError

DESCRIPTION = (
    "Upload each FILE under a fresh batch/<run>/ prefix of the local bucket, start the "
    'synthesized SconesBatch state machine with {"prefix": "batch/<run>/"} (a Distributed '
    "Map running the workflow's three steps on every object), wait for it, and print one "
    "JSON line per file {file, s3_key, status, label, confidence, inferences, error, cause, "
    "duration_ms (the child's own, from its StartDate and StopDate)}, "
    "read from the results the batch wrote (batch-results/<map run>/manifest.json and its "
    "result files). A summary goes to stderr. Exit 0 when the batch ran to an end, whatever "
    "its items' outcomes; a file the batch never reached (it failed first) is NOT_RUN."
)


def run(args: argparse.Namespace) -> int:
    from emulator.batch import run_batch, upload_batch

    require_files(args.files)
    with local_workflow(args, "batch") as (out, workflow):
        if workflow.spec.batch is None:
            raise EmulatorError(
                "the synthesized app has no batch state machine: synthesize with -c batch_mode=true"
            )
        prefix, keys = upload_batch(
            workflow, ((str(path), path.read_bytes()) for path in args.files)
        )
        run = run_batch(workflow, prefix, timeout=args.timeout)
        for outcome in run.outcomes(keys):
            out.write(json.dumps(outcome.as_json()) + "\n")
        out.flush()
        print(json.dumps(run.summary()), file=sys.stderr)
    return 0


HELP = "run files through the batch state machine (Distributed Map), one JSON line each"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(commands, "batch", run, HELP, DESCRIPTION, workflow_options())
    add_capture_dir(parser, "also keep the endpoint's data capture under DIR")
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="give up waiting for the batch after this long (default: 3600)",
    )
    parser.add_argument("files", type=Path, nargs="+", metavar="FILE")
