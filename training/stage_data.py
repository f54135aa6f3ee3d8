"""Stage the bicycle/motorcycle images of CIFAR-100 as PNG folders, locally or in S3.

Reads the official CIFAR-100 python archive (downloaded from its official URL with its
official md5 checked, or a local archive in the same layout given by path), keeps fine
labels 8 (bicycle) and 48 (motorcycle) of both splits, checks the data and writes

    <dest>/{train,test}/{bicycle,motorcycle}/<file>.png   and   <dest>/manifest.csv

Labels come from ``fine_labels`` only, never from file names. Uploading to S3 skips every
object whose content is already there unchanged.
"""

# ruff: noqa: E402  (sys.path is set before the project import it affects)
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import pickle
import sys
import tarfile
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

if __package__ in (None, ""):  # run as a script: make the project's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stacks.names import DATA_PREFIX

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
OFFICIAL_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
ARCHIVE_FOLDER = "cifar-100-python"
SPLITS = ("train", "test")
# CIFAR-100's fine labels of the model's classes, in the model's order (CLASS_NAMES of
# training/model/network.py: a test holds them equal); the archive's meta must name them so.
FINE_LABELS = {8: "bicycle", 48: "motorcycle"}
CLASS_NAMES = tuple(FINE_LABELS.values())
IMAGE_SIDE = 32
ROW_LENGTH = 3 * IMAGE_SIDE * IMAGE_SIDE
MANIFEST_NAME = "manifest.csv"
MANIFEST_FIELDS = ("split", "label", "file", "pixel_sha256")
DEFAULT_MAX_IMBALANCE = 1.5


class StagingError(Exception):
    """Base class of every staging failure; its message is meant for the user as is."""


class DownloadError(StagingError):
    """The official archive could not be downloaded."""


class ChecksumMismatch(StagingError):
    """The downloaded archive does not have the official md5."""


class CorruptArchive(StagingError):
    """The archive is unreadable or lacks the official members and fields."""


class DataQualityError(StagingError):
    """The extracted images fail a data-quality check (counts, balance, shape, duplicates)."""


@dataclass(frozen=True)
class LabelledImage:
    split: str
    label: str
    file: str
    pixels: np.ndarray  # uint8, 32x32x3

    @property
    def pixel_sha256(self) -> str:
        return hashlib.sha256(self.pixels.tobytes()).hexdigest()


@dataclass(frozen=True)
class StagedData:
    root: Path
    manifest: Path
    counts: dict[str, dict[str, int]]


@dataclass(frozen=True)
class UploadReport:
    uploaded: int
    unchanged: int


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_official_archive(
    dest_dir: Path,
    url: str = OFFICIAL_URL,
    expected_md5: str = OFFICIAL_MD5,
    opener: Callable[[str], Any] | None = None,
) -> Path:
    """Download the archive into ``dest_dir`` (reusing a verified earlier download)."""
    opener = opener or urllib.request.urlopen
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / url.rsplit("/", 1)[-1]
    if target.exists() and file_md5(target) == expected_md5:
        return target
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with opener(url) as response, partial.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc="download") as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"could not download {url}: {error}") from error
    actual_md5 = file_md5(partial)
    if actual_md5 != expected_md5:
        partial.unlink()
        raise ChecksumMismatch(
            f"{url} has md5 {actual_md5}, expected the official {expected_md5}; "
            "the download is damaged or not the official archive"
        )
    partial.replace(target)
    return target


def _load_pickle(archive: tarfile.TarFile, member_name: str) -> dict[bytes, Any]:
    try:
        handle = archive.extractfile(f"{ARCHIVE_FOLDER}/{member_name}")
    except KeyError as error:
        raise CorruptArchive(f"archive lacks the member {ARCHIVE_FOLDER}/{member_name}") from error
    if handle is None:
        raise CorruptArchive(f"{ARCHIVE_FOLDER}/{member_name} in the archive is not a file")
    try:
        content = pickle.load(handle, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise CorruptArchive(f"{ARCHIVE_FOLDER}/{member_name} is not a readable pickle") from error
    if not isinstance(content, dict):
        raise CorruptArchive(f"{ARCHIVE_FOLDER}/{member_name} is not a dict")
    return content


def _field(content: dict[bytes, Any], name: str, member: str) -> Any:
    if name.encode() not in content:
        raise CorruptArchive(f"{ARCHIVE_FOLDER}/{member} lacks the field {name!r}")
    return content[name.encode()]


def _check_label_names(meta: dict[bytes, Any]) -> None:
    names = _field(meta, "fine_label_names", "meta")
    for index, expected in FINE_LABELS.items():
        actual = names[index] if index < len(names) else None
        actual_text = actual.decode() if isinstance(actual, bytes) else actual
        if actual_text != expected:
            raise CorruptArchive(
                f"meta names fine label {index} {actual_text!r}, expected {expected!r}"
            )


def _images_of_split(content: dict[bytes, Any], split: str) -> list[LabelledImage]:
    labels = list(_field(content, "fine_labels", split))
    filenames = list(_field(content, "filenames", split))
    data = np.asarray(_field(content, "data", split))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW_LENGTH:
        raise DataQualityError(
            f"{split}: pixel data is {data.dtype} {data.shape}, expected uint8 N x {ROW_LENGTH} "
            f"(every image {IMAGE_SIDE}x{IMAGE_SIDE} RGB)"
        )
    if not len(labels) == len(filenames) == data.shape[0]:
        raise CorruptArchive(
            f"{split}: {len(labels)} labels, {len(filenames)} file names and "
            f"{data.shape[0]} images do not line up"
        )
    images = []
    for row, label, filename in zip(data, labels, filenames, strict=True):
        if label not in FINE_LABELS:
            continue
        name = filename.decode() if isinstance(filename, bytes) else str(filename)
        pixels = row.reshape(3, IMAGE_SIDE, IMAGE_SIDE).transpose(1, 2, 0)
        images.append(
            LabelledImage(split, FINE_LABELS[label], Path(name).stem + ".png", pixels.copy())
        )
    return images


def read_archive(archive_path: Path) -> list[LabelledImage]:
    """Read the bicycle and motorcycle images of both splits from the archive."""
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            loaded = {
                name: _load_pickle(archive, name)
                for name in tqdm(("meta", *SPLITS), desc="extract", unit="member")
            }
    except (tarfile.TarError, EOFError, OSError) as error:
        raise CorruptArchive(f"{archive_path} is not a readable .tar.gz: {error}") from error
    _check_label_names(loaded["meta"])
    return [image for split in SPLITS for image in _images_of_split(loaded[split], split)]


def check_quality(
    images: Iterable[LabelledImage], max_imbalance: float = DEFAULT_MAX_IMBALANCE
) -> dict[str, dict[str, int]]:
    """Check class counts, balance and duplicates; return the counts per split and class."""
    images = list(images)
    counts = {split: {label: 0 for label in CLASS_NAMES} for split in SPLITS}
    for image in images:
        counts[image.split][image.label] += 1
    for split, per_class in counts.items():
        missing = [label for label, count in per_class.items() if count == 0]
        if missing:
            raise DataQualityError(f"{split}: no images of class {', '.join(missing)}")
        ratio = max(per_class.values()) / min(per_class.values())
        if ratio > max_imbalance:
            raise DataQualityError(
                f"{split}: classes are unbalanced {per_class} (ratio {ratio:.2f} > {max_imbalance})"
            )
    by_hash: dict[str, list[LabelledImage]] = defaultdict(list)
    for image in images:
        by_hash[image.pixel_sha256].append(image)
    duplicates = [group for group in by_hash.values() if len(group) > 1]
    if duplicates:
        leaks = [group for group in duplicates if len({image.split for image in group}) > 1]
        kind = "across splits (train/test leakage)" if leaks else "within a split"
        example = ", ".join(f"{i.split}/{i.label}/{i.file}" for i in (leaks or duplicates)[0])
        raise DataQualityError(
            f"{len(duplicates)} duplicated image(s) {kind}, e.g. the same pixels in {example}"
        )
    names = Counter((image.split, image.label, image.file) for image in images)
    clashes = [name for name, count in names.items() if count > 1]
    if clashes:
        raise DataQualityError(f"file name used twice in one folder: {'/'.join(clashes[0])}")
    return counts


def write_images(images: Iterable[LabelledImage], dest: Path) -> Path:
    """Write the PNGs and the manifest under ``dest``; return the manifest path."""
    dest.mkdir(parents=True, exist_ok=True)
    manifest = dest / MANIFEST_NAME
    rows = []
    for image in images:
        folder = dest / image.split / image.label
        folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.fromarray(image.pixels, mode="RGB").save(buffer, format="PNG")
        target = folder / image.file
        if not target.exists() or target.read_bytes() != buffer.getvalue():
            target.write_bytes(buffer.getvalue())
        rows.append((image.split, image.label, image.file, image.pixel_sha256))
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(MANIFEST_FIELDS)
        writer.writerows(rows)
    return manifest


def stage_local(
    dest: Path,
    archive: Path | None = None,
    download_dir: Path | None = None,
    max_imbalance: float = DEFAULT_MAX_IMBALANCE,
) -> StagedData:
    """Stage from a local archive, or from the official download when ``archive`` is None."""
    if archive is None:
        archive = download_official_archive(download_dir or dest.parent / "downloads")
    elif not archive.is_file():
        raise StagingError(f"archive {archive} does not exist")
    images = read_archive(archive)
    counts = check_quality(images, max_imbalance)
    manifest = write_images(images, dest)
    return StagedData(root=dest, manifest=manifest, counts=counts)


def upload_folder(local_root: Path, bucket: str, prefix: str, s3_client: Any) -> UploadReport:
    """Upload every file under ``local_root`` to ``s3://bucket/prefix``, skipping unchanged ones.

    An object counts as unchanged when its ETag equals the file's md5, which holds for the
    single-part uploads this function makes.
    """
    prefix = prefix.rstrip("/") + "/"
    existing: dict[str, str] = {}
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            existing[item["Key"]] = item["ETag"].strip('"')
    files = sorted(path for path in local_root.rglob("*") if path.is_file())
    uploaded = unchanged = 0
    for path in tqdm(files, desc=f"upload s3://{bucket}/{prefix}", unit="file"):
        key = prefix + path.relative_to(local_root).as_posix()
        if existing.get(key) == file_md5(path):
            unchanged += 1
            continue
        s3_client.upload_file(str(path), bucket, key)
        uploaded += 1
    return UploadReport(uploaded=uploaded, unchanged=unchanged)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Stage the CIFAR-100 bicycle/motorcycle images as PNG folders plus a manifest, "
            "checking class counts, balance, image shape and train/test duplicates."
        )
    )
    parser.add_argument(
        "--archive",
        type=Path,
        help="local archive in the official CIFAR-100 python layout; "
        f"default: download {OFFICIAL_URL} and check its md5",
    )
    parser.add_argument(
        "--dest", type=Path, default=Path("build/data"), help="local folder (default: build/data)"
    )
    parser.add_argument(
        "--bucket", help="also upload the staged folder to s3://BUCKET/data/ (unchanged files skip)"
    )
    parser.add_argument(
        "--max-imbalance",
        type=float,
        default=DEFAULT_MAX_IMBALANCE,
        help="largest allowed ratio of majority to minority class count per split",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        staged = stage_local(args.dest, args.archive, max_imbalance=args.max_imbalance)
        print(f"staged {staged.counts} under {staged.root}")
        if args.bucket:
            import boto3

            report = upload_folder(staged.root, args.bucket, DATA_PREFIX, boto3.client("s3"))
            print(f"uploaded {report.uploaded} file(s), {report.unchanged} already there unchanged")
    except StagingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
