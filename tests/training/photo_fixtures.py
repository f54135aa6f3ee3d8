"""Generated labelled photos (never real ones): JPEG and PNG of several sizes and shapes."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

SIZES = ((160, 120), (90, 140), (64, 64), (300, 200))
CLASS_TINT = {"bicycle": (200, 60, 60), "motorcycle": (60, 60, 200)}


def photo_pixels(rng: np.random.Generator, label: str, size: tuple[int, int]) -> np.ndarray:
    """A tinted noisy gradient, different for every draw."""
    width, height = size
    ramp = np.linspace(0.4, 1.0, width)[None, :, None]
    tint = np.array(CLASS_TINT[label], dtype=np.float64)[None, None, :]
    noise = rng.normal(0, 25, (height, width, 3))
    return np.clip(ramp * tint + noise, 0, 255).astype(np.uint8)


def write_photos(
    root: Path,
    counts: dict[str, int],
    seed: int = 0,
    sources: tuple[str, ...] = (),
    folder_names: dict[str, str] | None = None,
) -> Path:
    """``root/<label>/<label>_<n>.{jpg,png}``; with ``sources`` also a manifest.csv whose
    source column cycles through them."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, count in counts.items():
        folder = root / (folder_names or {}).get(label, label)
        folder.mkdir(parents=True, exist_ok=True)
        for number in range(count):
            size = SIZES[number % len(SIZES)]
            image = Image.fromarray(photo_pixels(rng, label, size))
            suffix = ".jpg" if number % 2 == 0 else ".png"
            path = folder / f"{label}_{number}{suffix}"
            image.save(path, quality=90) if suffix == ".jpg" else image.save(path)
            source = sources[number % len(sources)] if sources else ""
            rows.append((path.relative_to(root).as_posix(), label, source))
    if sources:
        with (root / "manifest.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(("file", "label", "source"))
            writer.writerows(rows)
    return root
