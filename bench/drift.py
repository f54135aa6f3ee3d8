# ruff: noqa: E402  (the environment and sys.path are set before the imports they affect)
"""Drift monitor on the local mode: a clean batch and a shifted batch, side by side, per seed.

    python bench/drift.py [--model build/model/model-record.json] [--shift dark] [--runs 10]

For each seed, two batches of --count images (default 200) drawn with replacement from the
staged test split go through the local workflow (moto Step Functions, the three handlers,
the local endpoint with data capture): one unchanged, one shifted (dark, blur or rotate). The
drift monitor's analysis then compares each batch's capture with the model's baseline (the
``drift-baseline.json`` training wrote beside the record). Prints, per seed, each batch's
drift score (the largest KS statistic D) and verdict and the ratio shifted / clean; then how
many shifted batches were flagged and how many clean ones were (target: all shifted, no
clean). Without a model record, trains one first (--epochs, default 20) from --archive.

    python bench/drift.py --photos ../shared/data/real-photos-dev [--model RECORD]

With ``--photos`` (labelled photos, ``training/photos.py``'s layouts), real photos instead:
two disjoint windows stratified by class and source, A and B, go through the workflow; A's
capture becomes a reviewed baseline (``capture_baseline``, as a user would take one), and B
goes again clean and with each shift. Prints each window's KS statistics against the photo
baseline and against the record's own (the CIFAR test split's); target: B clean not flagged
against the photo baseline, every shift flagged.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the local mode sets it, before torch

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.options import add_log, bench_parser, results_stdout
from emulator.assembly import cached_assembly
from emulator.demo import DEFAULT_DATA_DIR, stage
from emulator.drift import (
    SHIFTS,
    DriftSettings,  # the drift monitor's own (lambda_src/drift_monitor/drift_settings.py)
    analyse_capture_dir,
    make_batch,
    record_with_baseline,
    reviewed_baseline,
    send_batch,
    send_photos,
    test_split_images,
)
from emulator.workflow import LocalWorkflow
from training.photos import labelled_photos, stratified_split
from training.record import DEFAULT_PATH

DEFAULT_ARCHIVE = (
    REPO_ROOT.parent / "shared" / "data" / "cifar-100-python-bicycle-motorcycle.tar.gz"
)


def model_record(model: Path, archive: Path | None, epochs: int) -> Path:
    if model.is_file():
        return model
    from training.train import train_local

    print(f"no model record at {model}: training {epochs} epochs first", file=sys.stderr)
    return train_local(archive, output=model.parent, epochs=epochs, data_dir=DEFAULT_DATA_DIR)


def run_batch(
    assembly: Path, record: Path, images: list, settings: DriftSettings, report_dir: Path
) -> dict:
    """Send one batch through a fresh local workflow; the drift report of its capture."""
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as capture:
        with LocalWorkflow(assembly, record, capture_dir=Path(capture)) as workflow:
            send_batch(workflow, images)
        return analyse_capture_dir(record, Path(capture), settings, report_dir)


def compare(args: argparse.Namespace, out: TextIO) -> bool:
    """The runs, one line each to ``out``, and the summary; True when the target is met."""
    record = model_record(args.model, args.archive, args.epochs)
    paths = test_split_images(stage(args.archive, DEFAULT_DATA_DIR))
    assembly = cached_assembly(record)
    settings = DriftSettings(drift_threshold=args.threshold)
    print(
        f"model {record}; {len(paths)} test images; {args.count} per batch; shift {args.shift}; "
        f"ks_2samp, drift when D > {settings.drift_threshold} and p < "
        f"{settings.significance} / features",
        file=out,
    )
    print(
        f"{'seed':>4}  {'clean D':>8} {'verdict':<8}  {'shifted D':>9} {'verdict':<8}  ratio",
        file=out,
    )
    ratios, clean_flagged, shifted_flagged = [], 0, 0
    started = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.runs):
        reports = {
            kind: run_batch(
                assembly,
                record,
                make_batch(paths, kind, args.count, seed),
                settings,
                args.report_dir / f"{seed}-{kind}",
            )
            for kind in ("clean", args.shift)
        }
        clean, shifted = reports["clean"], reports[args.shift]
        ratio = shifted["score"] / clean["score"] if clean["score"] > 0 else float("inf")
        ratios.append(ratio)
        clean_flagged += clean["drift"]
        shifted_flagged += shifted["drift"]
        print(
            f"{seed:>4}  {clean['score']:>8.3f} {'DRIFT' if clean['drift'] else 'ok':<8}  "
            f"{shifted['score']:>9.3f} {'DRIFT' if shifted['drift'] else 'ok':<8}  {ratio:.1f}",
            file=out,
            flush=True,
        )
    met = shifted_flagged == args.runs and clean_flagged == 0
    print(
        f"\nshifted ({args.shift}) flagged {shifted_flagged}/{args.runs}, clean flagged "
        f"{clean_flagged}/{args.runs}; ratio shifted/clean D: median "
        f"{statistics.median(ratios):.1f}, min {min(ratios):.1f}; "
        f"{time.perf_counter() - started:.0f} s; target {'met' if met else 'NOT met'}",
        file=out,
    )
    return met


def compare_photos(args: argparse.Namespace, out: TextIO) -> bool:
    """Window A as the baseline, window B clean and shifted; True when the target is met."""
    record = model_record(args.model, args.archive, args.epochs)
    assembly = cached_assembly(record)
    settings = DriftSettings(drift_threshold=args.threshold)
    photos = labelled_photos(args.photos)
    window_a, window_b = stratified_split(photos, 0.5, seed=args.first_seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-drift-photos-") as work:
        root = Path(work)

        def send(window: list, shift: str) -> Path:
            capture = root / f"capture-{shift}-{len(window)}"
            send_photos(assembly, record, [photo.path for photo in window], capture, shift)
            return capture

        described = {"capture_window": f"window A of {args.photos}"}
        baseline = reviewed_baseline(send(window_a, "clean"), record, described)
        reviewed = record_with_baseline(record, baseline, root / "reviewed")
        print(
            f"model {record}; {len(photos)} photos: window A {len(window_a)} (the baseline), "
            f"window B {len(window_b)}; drift when D > {settings.drift_threshold} and p < "
            f"{settings.significance} / features",
            file=out,
        )
        print(f"{'window B':<9} {'baseline':<8} {'D conf':>7} {'D bright':>8}  verdict", file=out)
        met = True
        for shift in SHIFTS:
            capture = send(window_b, shift)
            for name, model in (("photos", reviewed), ("record", record)):
                report = analyse_capture_dir(model, capture, settings)
                features = report["features"]
                print(
                    f"{shift:<9} {name:<8} {features['top_confidence']['statistic']:>7.3f} "
                    f"{features['brightness']['statistic']:>8.3f}  "
                    f"{'DRIFT' if report['drift'] else 'ok'}",
                    file=out,
                    flush=True,
                )
                if name == "photos":
                    met &= report["drift"] == (shift != "clean")
    print(
        f"\n{time.perf_counter() - started:.0f} s; target (clean not flagged against the photo "
        f"baseline, every shift flagged) {'met' if met else 'NOT met'}",
        file=out,
    )
    return met


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_PATH,
        help="model record (default: build/model's; trained first when missing)",
    )
    parser.add_argument(
        "--archive",
        type=Path,
        default=DEFAULT_ARCHIVE if DEFAULT_ARCHIVE.is_file() else None,
        help="CIFAR-100 archive to stage and train from (default: ../shared/data's)",
    )
    parser.add_argument("--epochs", type=int, default=20, help="epochs when training (20)")
    parser.add_argument(
        "--photos", type=Path, help="labelled photos: windows of real photos (see above)"
    )
    parser.add_argument(
        "--shift", choices=[s for s in SHIFTS if s != "clean"], default="dark", help="(dark)"
    )
    parser.add_argument("--runs", type=int, default=10, help="seeds, one run each (default: 10)")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first run (0)")
    parser.add_argument("--count", type=int, default=200, help="images per batch (default: 200)")
    parser.add_argument(
        "--threshold", type=float, default=DriftSettings().drift_threshold, help="KS D limit"
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=REPO_ROOT / "build" / "local-mode" / "drift-bench",
        help="reports and plots per batch go to DIR/<seed>-<batch>/",
    )
    add_log(parser)
    args = parser.parse_args(argv)
    logging.getLogger("moto").setLevel(logging.CRITICAL)

    with results_stdout(args.log) as out:
        met = (compare_photos if args.photos else compare)(args, out)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
