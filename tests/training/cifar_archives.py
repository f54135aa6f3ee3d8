"""Tiny CIFAR-100 archives in the official layout (Python-2 style pickles, bytes keys)."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

BICYCLE, MOTORCYCLE, OTHER = 8, 48, 3
FINE_LABEL_NAMES = [f"class_{index}".encode() for index in range(100)]
FINE_LABEL_NAMES[BICYCLE] = b"bicycle"
FINE_LABEL_NAMES[MOTORCYCLE] = b"motorcycle"


def class_images(rng: np.random.Generator, label: int, count: int) -> np.ndarray:
    """Unique noisy rows (N x 3072, red then green then blue planes) tinted per class."""
    tint = {BICYCLE: (200, 60, 60), MOTORCYCLE: (60, 60, 200)}.get(label, (120, 120, 120))
    planes = [np.clip(rng.normal(channel, 40, size=(count, 1024)), 0, 255) for channel in tint]
    return np.concatenate(planes, axis=1).astype(np.uint8)


def split_dict(rows: list[tuple[int, bytes, np.ndarray]]) -> dict[bytes, object]:
    """One split as the official Python-2 pickles hold it (bytes keys)."""
    return {
        b"batch_label": b"generated",
        b"filenames": [name for _, name, _ in rows],
        b"fine_labels": [label for label, _, _ in rows],
        b"coarse_labels": [18 if label in (BICYCLE, MOTORCYCLE) else 0 for label, _, _ in rows],
        b"data": np.stack([pixels for _, _, pixels in rows]),
    }


def build_rows(
    rng: np.random.Generator, counts: dict[int, int], prefix: str
) -> list[tuple[int, bytes, np.ndarray]]:
    rows = []
    for label, count in counts.items():
        stem = {BICYCLE: "bike_s", MOTORCYCLE: "motorbike_s"}.get(label, "other_s")
        for index, pixels in enumerate(class_images(rng, label, count)):
            rows.append((label, f"{stem}_{prefix}{index:04d}.png".encode(), pixels))
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def write_archive(path: Path, splits: dict[str, object], meta: object | None = None) -> Path:
    """A .tar.gz with cifar-100-python/{meta,<splits>} pickled with protocol 2."""
    members = {
        "meta": meta
        or {b"fine_label_names": FINE_LABEL_NAMES, b"coarse_label_names": [b"vehicles_1"] * 20}
    }
    members.update(splits)
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            payload = pickle.dumps(content, protocol=2)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path
