"""``python -m emulator shifted-batch``: clean or shifted test images through the workflow."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emulator.commands.shared import add_capture_dir, add_command, local_workflow, workflow_options
from emulator.errors import EmulatorError

# emulator.drift.SHIFTS (a test holds them equal), without importing it to parse the options.
SHIFT_NAMES = ("clean", "dark", "blur", "rotate")
HELP = "send clean or shifted test images through the local workflow, with capture"
DESCRIPTION = (
    "Draw --count images from the staged test split (with replacement, seeded), shift them "
    "(dark: 40% brightness, blur: Gaussian of radius 1.5 px per 32 px of the shorter side, "
    "rotate: 90 degrees, clean: unchanged), "
    "upload each under incoming/ of the local workflow and keep the endpoint's data capture "
    "under --capture-dir. Prints one JSON summary."
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(commands, "shifted-batch", run, HELP, DESCRIPTION, workflow_options())
    parser.add_argument("--shift", choices=SHIFT_NAMES, required=True, help="the change")
    parser.add_argument("--count", type=int, default=200, help="images (default: 200)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    add_capture_dir(parser, "keep the capture here", required=True)
    parser.add_argument(
        "--archive",
        type=Path,
        metavar="PATH",
        help="CIFAR-100 archive to stage the test split from when --data-dir has none",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("build/data"),
        metavar="DIR",
        help="staged images, DIR/test/{bicycle,motorcycle}/*.png (default: build/data)",
    )


def run(args: argparse.Namespace) -> int:
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
