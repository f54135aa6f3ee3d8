"""Benchmark: test accuracy and training time of the default recipe, over several seeds.

Stages the archive in ../shared/data, trains locally (the same path as
``training/train.py --local``) once per seed, scores each ``model.tar.gz`` on the test split
through its own inference handlers, and prints accuracy mean and spread, wall time per run,
and the ratio to the course solutions' 0.80-0.85 test accuracy.

    .venv/bin/python bench/train_accuracy.py [--seeds 0 1 2] [--epochs N] [--hyperparameter K=V]

It also prints each network's accuracy alone (each member of an ensemble, without the
thumbnail probe's vote), so what the ensemble and the probe gain is measured in the same run.
"""

# ruff: noqa: E402  (the environment and sys.path are set before the imports they affect)
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from training.evaluate import extract_artifact, labelled_test_files, load_inference_module
from training.record import read_record
from training.train import add_hyperparameter_option, train_local

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_ARCHIVE = SHARED_DATA / "cifar-100-python-bicycle-motorcycle.tar.gz"
COURSE_ACCURACY = (0.80, 0.85)
TARGET_ACCURACY = 0.93
TARGET_SECONDS = 600


def member_accuracies(model_tar: Path, test_dir: Path) -> list[float]:
    """Test accuracy of each ensemble member alone, through the artifact's own inference code."""
    import torch

    with tempfile.TemporaryDirectory(prefix="bench-members-") as workdir:
        model_dir = extract_artifact(model_tar, Path(workdir))
        inference = load_inference_module(model_dir / "code")
        ensemble = inference.model_fn(str(model_dir)).thumbnails
    members = getattr(ensemble.network, "members", [ensemble.network])
    files = labelled_test_files(test_dir)
    batch = torch.cat(
        [inference.input_fn(path.read_bytes(), "image/png").thumbnail for _, path in files]
    )
    truth = torch.tensor([label for label, _ in files])
    accuracies = []
    for member in members:
        alone = inference.ProbabilityModel(
            member,
            ensemble.mean.flatten().tolist(),
            ensemble.std.flatten().tolist(),
            ensemble.flip_average,
        ).eval()
        with torch.inference_mode():
            accuracies.append(round((alone(batch).argmax(1) == truth).float().mean().item(), 4))
    return accuracies


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
    add_hyperparameter_option(
        parser, help="a recipe option other than the default, e.g. members=3 (repeatable)"
    )
    args = parser.parse_args(argv)

    runs = []
    for seed in args.seeds:
        started = time.perf_counter()
        record = read_record(
            train_local(
                args.archive,
                args.output / f"seed-{seed}",
                epochs=args.epochs,
                seed=seed,
                hyperparameters=dict(args.hyperparameter),
            )
        )
        wall = time.perf_counter() - started
        evaluation, metrics = record["evaluation"], record["metrics"]
        members = member_accuracies(
            Path(record["model_data_url"]), args.output / f"seed-{seed}" / "data" / "test"
        )
        runs.append(
            {
                "seed": seed,
                "test_accuracy": evaluation["accuracy"],
                "member_test_accuracies": members,
                "val_accuracy": metrics["val_accuracy"],
                "best_epochs": metrics["best_epochs"],
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
    member_mean = statistics.mean(a for run in runs for a in run["member_test_accuracies"])
    train_seconds = [run["train_seconds"] for run in runs]
    print()
    print(f"recipe: {record['metrics']['hyperparameters']}")
    print(
        f"test accuracy over seeds {args.seeds}: mean {mean:.4f}, std {spread:.4f}, "
        f"min {min(accuracies):.4f}, max {max(accuracies):.4f} "
        f"(n={record['evaluation']['test_size']} test images each)"
    )
    print(
        f"each network alone: mean {member_mean:.4f}; the ensemble and the probe gain "
        f"{mean - member_mean:+.4f} ({mean / member_mean:.3f}x)"
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
