"""``python -m emulator classify``: files through the local workflow, one JSON line each."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emulator.commands.shared import (
    add_capture_dir,
    add_command,
    local_workflow,
    require_files,
    workflow_options,
)

HELP = "run files through the local workflow, one JSON line each"
DESCRIPTION = (
    "Upload each FILE under the bucket's incoming/ prefix, let the workflow the app "
    "synthesizes run, print {file, s3_key, status, label, confidence, inferences, error, "
    "cause, duration_ms} per file. Exit 0 when every file got an outcome (FAILED included)."
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(commands, "classify", run, HELP, DESCRIPTION, workflow_options())
    add_capture_dir(parser, "also keep the endpoint's data capture under DIR")
    parser.add_argument("files", type=Path, nargs="+", metavar="FILE")


def run(args: argparse.Namespace) -> int:
    require_files(args.files)
    with local_workflow(args, "classify") as (out, workflow):
        for path in args.files:
            outcome = workflow.classify(path)
            out.write(json.dumps(outcome.as_json()) + "\n")
            out.flush()
    return 0
