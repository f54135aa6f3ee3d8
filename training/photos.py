"""Labelled photo folders: the layout a user's own photos (and the real-photo dev set) come in.

    DIR/<label>/<any name>.{jpg,png,...}      labels from the folder names
    DIR/manifest.csv                          optional: file,label[,source,...]

A ``manifest.csv`` with ``file`` and ``label`` columns names the photos and their labels, so a
flat folder works too; its ``source`` column (when present) groups the scores. Without a
manifest every file under a ``<label>/`` folder is a photo. Label names are matched to the
model's classes (``CLASS_NAMES`` of training/model/network.py) ignoring case; an unknown one
stops with a message naming it.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.model.network import CLASS_NAMES

MANIFEST_NAME = "manifest.csv"
NO_SOURCE = "-"


class PhotoFolderError(Exception):
    """The photo folder cannot be read as labelled photos; the message is for the user."""


@dataclass(frozen=True)
class Photo:
    path: Path
    label: int
    source: str = NO_SOURCE

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.label]


def class_index(name: str, where: str) -> int:
    """The class index of a label name (any case); a ``PhotoFolderError`` naming ``where``."""
    lowered = name.strip().lower()
    if lowered not in CLASS_NAMES:
        raise PhotoFolderError(
            f"unknown label {name!r} ({where}); the model's classes are {', '.join(CLASS_NAMES)}"
        )
    return CLASS_NAMES.index(lowered)


def _from_manifest(root: Path, manifest: Path) -> list[Photo]:
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"file", "label"} <= set(rows[0]):
        raise PhotoFolderError(f"{manifest} needs the columns file and label")
    photos = []
    for number, row in enumerate(rows, start=2):
        path = root / row["file"]
        if not path.is_file():
            raise PhotoFolderError(f"{manifest} line {number}: {row['file']} does not exist")
        label = class_index(row["label"], f"{manifest} line {number}")
        photos.append(Photo(path, label, (row.get("source") or "").strip() or NO_SOURCE))
    return photos


def _from_folders(root: Path) -> list[Photo]:
    photos = []
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        if folder.name.startswith("."):
            continue
        label = class_index(folder.name, f"folder {folder}")
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        photos.extend(Photo(path, label) for path in files)
    return photos


def labelled_photos(root: Path) -> list[Photo]:
    """Every labelled photo under ``root``, in a fixed order (the manifest's, else by path)."""
    if not root.is_dir():
        raise PhotoFolderError(f"photo folder {root} does not exist")
    manifest = root / MANIFEST_NAME
    photos = _from_manifest(root, manifest) if manifest.is_file() else _from_folders(root)
    if not photos:
        raise PhotoFolderError(f"{root} holds no photos in <label>/ folders ({CLASS_NAMES})")
    return photos


def stratified_split(
    photos: list[Photo], fraction: float, seed: int
) -> tuple[list[Photo], list[Photo]]:
    """(kept, held out): ``fraction`` of each (class, source) group held out, at least one
    of every class; a group of one photo stays in the kept part."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple[int, str], list[Photo]] = defaultdict(list)
    for photo in photos:
        groups[(photo.label, photo.source)].append(photo)
    kept, held_out = [], []
    for key in sorted(groups):
        members = [groups[key][i] for i in rng.permutation(len(groups[key]))]
        count = round(len(members) * fraction) if len(members) > 1 else 0
        held_out += members[:count]
        kept += members[count:]
    for index in range(len(CLASS_NAMES)):
        if not any(p.label == index for p in held_out):
            moved = next((p for p in kept if p.label == index), None)
            if moved is not None and sum(p.label == index for p in kept) > 1:
                kept.remove(moved)
                held_out.append(moved)
    order = {photo.path: position for position, photo in enumerate(photos)}
    return sorted(kept, key=lambda p: order[p.path]), sorted(held_out, key=lambda p: order[p.path])


def pixel_sha256(pixels: np.ndarray) -> str:
    """The hash that finds duplicates, as staging hashes CIFAR images: of the RGB bytes."""
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()
