"""Benchmark: two training recipes compared on folds of the training split (never the test split).

Splits the 1,000 training images into K stratified folds. For each fold, both recipes train on
the other folds (holding out their own validation set as usual) and are scored on the fold,
with the same seed. Prints each fold's accuracy for both, the paired differences, and the
ratio of the means: the way recipe changes are chosen here, so that the test split stays
untouched until the final score.

    .venv/bin/python bench/recipe_folds.py --candidate trivial-augment=1 [--baseline K=V ...]
"""

# ruff: noqa: E402  (the environment and sys.path are set before the imports they affect)
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from training.stage_data import stage_local
from training.train import (
    add_hyperparameter_option,
    entry_point_module,
    hyperparameter_arguments,
)

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_ARCHIVE = SHARED_DATA / "cifar-100-python-bicycle-motorcycle.tar.gz"


def link_folds(train_root: Path, dest: Path, folds: int, seed: int) -> list[Path]:
    """``dest/<k>/{fit,score}/<class>/*.png`` as symbolic links: fold k scores, the rest fit."""
    rng = np.random.default_rng(seed)
    roots = [dest / str(fold) for fold in range(folds)]
    for class_dir in sorted(path for path in train_root.iterdir() if path.is_dir()):
        files = sorted(class_dir.glob("*.png"))
        for position, index in enumerate(rng.permutation(len(files))):
            for fold, root in enumerate(roots):
                part = "score" if position % folds == fold else "fit"
                link = root / part / class_dir.name / files[index].name
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(files[index].resolve())
    return roots


def fold_accuracy(fold_root: Path, hyperparameters: dict, seed: int, workdir: Path) -> float:
    entry = entry_point_module()
    hp, paths, threads = entry.parse_args(
        hyperparameter_arguments(None, seed, hyperparameters)
        + ["--train-dir", str(fold_root / "fit"), "--test-dir", str(fold_root / "score")]
        + ["--model-dir", str(workdir / "model"), "--output-data-dir", str(workdir / "output")]
    )
    return entry.train(hp, paths, threads)["test_accuracy"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_hyperparameter_option(parser, "--baseline", help="baseline's options (repeatable)")
    add_hyperparameter_option(
        parser, "--candidate", default=None, required=True, help="candidate's options"
    )
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="training seed of both recipes")
    args = parser.parse_args(argv)
    baseline, candidate = dict(args.baseline), {**dict(args.baseline), **dict(args.candidate)}

    with tempfile.TemporaryDirectory(prefix="bench-folds-") as workdir:
        root = Path(workdir)
        staged = stage_local(root / "data", args.archive, download_dir=root / "downloads")
        fold_roots = link_folds(staged.root / "train", root / "folds", args.folds, seed=1234)
        rows = []
        for fold, fold_root in enumerate(fold_roots):
            scores = [
                fold_accuracy(fold_root, recipe, args.seed, root / f"run-{fold}-{name}")
                for name, recipe in (("baseline", baseline), ("candidate", candidate))
            ]
            rows.append(scores)
            print(f"fold {fold}: baseline {scores[0]:.3f}  candidate {scores[1]:.3f}", flush=True)

    base_mean = statistics.mean(row[0] for row in rows)
    cand_mean = statistics.mean(row[1] for row in rows)
    differences = [row[1] - row[0] for row in rows]
    print()
    print(f"baseline  {baseline or 'the default recipe'}: mean {base_mean:.4f}")
    print(f"candidate {candidate}: mean {cand_mean:.4f}")
    print(
        f"candidate / baseline: {cand_mean / base_mean:.4f}x; paired difference "
        f"{statistics.mean(differences):+.4f}, better on {sum(d > 0 for d in differences)} "
        f"of {len(differences)} folds, worse on {sum(d < 0 for d in differences)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
