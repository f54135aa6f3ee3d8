"""Fixtures for the training tests: tiny generated archives and an untrained model folder."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_SOURCE_DIR = REPO_ROOT / "training" / "model"
for folder in (REPO_ROOT, MODEL_SOURCE_DIR, Path(__file__).resolve().parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from cifar_archives import (  # noqa: E402
    BICYCLE,
    MOTORCYCLE,
    OTHER,
    build_rows,
    split_dict,
    write_archive,
)


@pytest.fixture
def make_archive(tmp_path: Path) -> Callable[..., Path]:
    """Factory: an archive with the given per-split class counts; rows may be edited."""

    def factory(
        train: dict[int, int] | None = None,
        test: dict[int, int] | None = None,
        edit: Callable[[dict[str, list]], None] | None = None,
        name: str = "cifar.tar.gz",
        seed: int = 0,
    ) -> Path:
        rng = np.random.default_rng(seed)
        rows = {
            "train": build_rows(rng, train or {BICYCLE: 12, MOTORCYCLE: 12, OTHER: 5}, "tr"),
            "test": build_rows(rng, test or {BICYCLE: 6, MOTORCYCLE: 6, OTHER: 3}, "te"),
        }
        if edit:
            edit(rows)
        return write_archive(
            tmp_path / name, {split: split_dict(items) for split, items in rows.items()}
        )

    return factory


@pytest.fixture
def staged(make_archive, tmp_path: Path) -> Path:
    """A generated archive staged as PNG folders; the root holding ``train/`` and ``test/``."""
    from training.stage_data import stage_local

    return stage_local(tmp_path / "data", make_archive()).root


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """An untrained (seeded) model folder in the artifact layout, small enough to be fast."""
    import torch
    from artifact import SHIPPED_MODULES
    from network import CLASS_NAMES, build_network

    torch.manual_seed(0)
    directory = tmp_path / "model"
    (directory / "code").mkdir(parents=True)
    torch.save(build_network("cnn3", 8).state_dict(), directory / "model.pth")
    config = {
        "architecture": "cnn3",
        "width": 8,
        "class_names": list(CLASS_NAMES),
        "input_size": 32,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
        "flip_average": True,
    }
    (directory / "model-config.json").write_text(json.dumps(config))
    for module in SHIPPED_MODULES:
        (directory / "code" / module).write_bytes((MODEL_SOURCE_DIR / module).read_bytes())
    return directory
