"""Benchmark: test accuracy and training time of the default recipe, over several seeds.

Stages the archive in ../shared/data, trains locally (the same path as
``training/train.py --local``) once per seed, scores each ``model.tar.gz`` on the test split
through its own inference handlers, and prints accuracy mean and spread, wall time per run,
and the ratio to the course solutions' 0.80-0.85 test accuracy.

    .venv/bin/python bench/train_accuracy.py [--seeds 0 1 2] [--epochs N]
"""

# ruff: noqa: E402  (the environment and sys.path are set before the imports they affect)
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from training.record import read_record
from training.train import train_local

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_ARCHIVE = SHARED_DATA / "cifar-100-python-bicycle-motorcycle.tar.gz"
COURSE_ACCURACY = (0.80, 0.85)
TARGET_ACCURACY = 0.93
TARGET_SECONDS = 600


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO_ROOT / "build" / "bench-train",
        help="one sub-folder per seed (default: build/bench-train)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="default: the recipe's")
    args = parser.parse_args(argv)

    runs = []
    for seed in args.seeds:
        started = time.perf_counter()
        record = read_record(
            train_local(args.archive, args.output / f"seed-{seed}", epochs=args.epochs, seed=seed)
        )
        wall = time.perf_counter() - started
        evaluation, metrics = record["evaluation"], record["metrics"]
        runs.append(
            {
                "seed": seed,
                "test_accuracy": evaluation["accuracy"],
                "val_accuracy": metrics["val_accuracy"],
                "best_epoch": metrics["best_epoch"],
                "train_seconds": metrics["train_seconds"],
                "run_seconds": round(wall, 1),
                "recommended_threshold": evaluation["recommended_threshold"],
                "latency_ms_per_image": evaluation["latency_ms_per_image"],
            }
        )
        print(json.dumps(runs[-1]), flush=True)

    accuracies = [run["test_accuracy"] for run in runs]
    mean = statistics.mean(accuracies)
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    train_seconds = [run["train_seconds"] for run in runs]
    print()
    print(f"recipe: {record['metrics']['hyperparameters']}")
    print(
        f"test accuracy over seeds {args.seeds}: mean {mean:.4f}, std {spread:.4f}, "
        f"min {min(accuracies):.4f}, max {max(accuracies):.4f} "
        f"(n={record['evaluation']['test_size']} test images each)"
    )
    print(
        f"training wall time per run: mean {statistics.mean(train_seconds):.1f} s, "
        f"max {max(train_seconds):.1f} s on {os.cpu_count()} cores "
        f"(whole run incl. staging and evaluation: "
        f"{statistics.mean(run['run_seconds'] for run in runs):.1f} s)"
    )
    low, high = COURSE_ACCURACY
    print(
        f"ratio to the course solutions: {mean / high:.3f}x (vs {high}) to "
        f"{mean / low:.3f}x (vs {low})"
    )
    accuracy_verdict = "met" if mean >= TARGET_ACCURACY else "MISSED"
    time_verdict = "met" if max(train_seconds) < TARGET_SECONDS else "MISSED"
    print(
        f"target: accuracy >= {TARGET_ACCURACY} -> {accuracy_verdict}; "
        f"training < {TARGET_SECONDS} s -> {time_verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
