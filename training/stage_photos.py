"""Stage a user's own labelled photos next to (or instead of) the CIFAR images.

Every photo is decoded and fitted to the network input by the artifact's own
``inference.py`` (``decode_image`` then ``fit_to_input``: what the endpoint does to a
request), checked, and a stratified part of each (class, source) group is held out:

    <dest>/train/<class>/photo-<name>.png     fitted 32x32 training images
    <dest>/photos-test/<class>/<name>         the held-out photos as they are (full size)
    <dest>/photos-test/manifest.csv           their file, label and source
    <dest>/test/<class>/photo-<name>.png      photos alone only: the held-out part, fitted

The checks: every file decodes as an image, no two photos (and no photo and CIFAR image)
have the same pixels, both classes are present and balanced within ``max_imbalance``.
"""

from __future__ import annotations

import csv
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from training.photos import (
    CLASS_NAMES,
    MANIFEST_NAME,
    Photo,
    PhotoFolderError,
    labelled_photos,
    pixel_sha256,
    stratified_split,
)
from training.stage_data import DEFAULT_MAX_IMBALANCE, DataQualityError, StagingError

PHOTOS_TEST = "photos-test"
PREFIX = "photo-"
DEFAULT_TEST_FRACTION = 0.2


@dataclass(frozen=True)
class CheckedPhoto:
    photo: Photo
    name: str  # unique staged stem: the path under the folder, '/' as '__'
    fitted: np.ndarray  # uint8 32x32x3, as the endpoint feeds the network
    decoded_sha256: str


@dataclass(frozen=True)
class StagedPhotos:
    train: int
    held_out: int
    counts: dict[str, int]


def _inference_module():
    from training.cloud import MODEL_SOURCE_DIR
    from training.evaluate import import_from_folder

    return import_from_folder(MODEL_SOURCE_DIR, "inference")


def read_photos(root: Path) -> list[CheckedPhoto]:
    """Decode and fit every labelled photo; a ``DataQualityError`` names one that fails."""
    try:
        photos = labelled_photos(root)
    except PhotoFolderError as error:
        raise StagingError(f"--images: {error}") from error
    inference = _inference_module()
    checked = []
    for photo in tqdm(photos, desc="check photos", unit="photo"):
        try:
            image = inference.decode_image(photo.path.read_bytes())
        except inference.RequestError as error:
            raise DataQualityError(f"{photo.path} is not a decodable image: {error}") from None
        decoded = np.asarray(image.convert("RGB"))
        fitted = np.asarray(inference.fit_to_input(image), dtype=np.uint8)
        name = photo.path.relative_to(root).with_suffix("").as_posix().replace("/", "__")
        checked.append(CheckedPhoto(photo, name, fitted, pixel_sha256(decoded)))
    return checked


def check_photos(
    checked: list[CheckedPhoto],
    other_hashes: dict[str, str] | None = None,
    max_imbalance: float = DEFAULT_MAX_IMBALANCE,
) -> dict[str, int]:
    """Class counts, balance and duplicates (among the photos, as decoded and as fitted, and
    against ``other_hashes``: CIFAR pixel hash -> where); return the count per class."""
    counts = Counter(item.photo.class_name for item in checked)
    per_class = {name: counts.get(name, 0) for name in CLASS_NAMES}
    missing = [name for name, count in per_class.items() if count < 2]
    if missing:
        raise DataQualityError(
            f"photos: class {', '.join(missing)} has fewer than 2 photos {per_class}; add "
            "photos of every class (a part of each is held out as the photos' test split)"
        )
    ratio = max(per_class.values()) / min(per_class.values())
    if ratio > max_imbalance:
        raise DataQualityError(
            f"photos: classes are unbalanced {per_class} (ratio {ratio:.2f} > {max_imbalance}); "
            "add photos of the smaller class or remove some of the larger"
        )
    for kind, key in (
        ("decoded", lambda item: item.decoded_sha256),
        ("fitted to 32x32", lambda item: pixel_sha256(item.fitted)),
    ):
        groups: dict[str, list[CheckedPhoto]] = defaultdict(list)
        for item in checked:
            groups[key(item)].append(item)
        duplicates = [group for group in groups.values() if len(group) > 1]
        if duplicates:
            example = ", ".join(str(item.photo.path) for item in duplicates[0])
            raise DataQualityError(
                f"{len(duplicates)} duplicated photo(s) (same pixels {kind}), e.g. {example}"
            )
    for item in checked:
        for digest in (item.decoded_sha256, pixel_sha256(item.fitted)):
            if other_hashes and digest in other_hashes:
                raise DataQualityError(
                    f"photo {item.photo.path} has the same pixels as the CIFAR image "
                    f"{other_hashes[digest]} (duplicate across the data sets)"
                )
    return per_class


def _clear_previous(dest: Path) -> None:
    shutil.rmtree(dest / PHOTOS_TEST, ignore_errors=True)
    for split in ("train", "test"):
        for path in (dest / split).glob(f"*/{PREFIX}*.png"):
            path.unlink()


def _write_fitted(items: list[CheckedPhoto], folder: Path) -> None:
    for item in items:
        target = folder / item.photo.class_name / f"{PREFIX}{item.name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(item.fitted, mode="RGB").save(target, format="PNG")


def write_photos(
    checked: list[CheckedPhoto], dest: Path, test_fraction: float, seed: int, alone: bool
) -> tuple[list[CheckedPhoto], list[CheckedPhoto]]:
    """Split, then write the staged layout of the module docstring; (train, held out)."""
    by_path = {item.photo.path: item for item in checked}
    kept, held_out = stratified_split([item.photo for item in checked], test_fraction, seed)
    train, test = [by_path[p.path] for p in kept], [by_path[p.path] for p in held_out]
    _clear_previous(dest)
    _write_fitted(train, dest / "train")
    if alone:
        _write_fitted(test, dest / "test")
    rows = []
    for item in test:
        suffix = item.photo.path.suffix.lower()
        relative = f"{item.photo.class_name}/{item.name}{suffix}"
        (dest / PHOTOS_TEST / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item.photo.path, dest / PHOTOS_TEST / relative)
        rows.append((relative, item.photo.class_name, item.photo.source))
    with (dest / PHOTOS_TEST / MANIFEST_NAME).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("file", "label", "source"))
        writer.writerows(rows)
    return train, test


def manifest_hashes(manifest: Path) -> dict[str, str]:
    """Pixel hash -> ``split/label/file`` of the CIFAR images a staging manifest lists."""
    with manifest.open(newline="") as handle:
        return {
            row["pixel_sha256"]: f"{row['split']}/{row['label']}/{row['file']}"
            for row in csv.DictReader(handle)
        }


def stage_photos(
    images: Path,
    dest: Path,
    other_hashes: dict[str, str] | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
    max_imbalance: float = DEFAULT_MAX_IMBALANCE,
) -> StagedPhotos:
    """Check and stage the photos of ``images`` under ``dest``; without ``other_hashes``
    (no CIFAR archive) they are the only data, and their held-out part is also ``test/``."""
    checked = read_photos(images)
    counts = check_photos(checked, other_hashes, max_imbalance)
    train, test = write_photos(checked, dest, test_fraction, seed, alone=other_hashes is None)
    return StagedPhotos(train=len(train), held_out=len(test), counts=counts)
