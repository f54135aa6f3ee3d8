"""Data staging: official layout, labels from fine_labels, quality checks, download, S3 sync."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io

import boto3
import numpy as np
import pytest
from cifar_archives import BICYCLE, MOTORCYCLE, OTHER, write_archive
from moto import mock_aws
from PIL import Image

from training import stage_data


def test_stages_both_classes_of_both_splits_as_png(make_archive, tmp_path):
    archive = make_archive()
    staged = stage_data.stage_local(tmp_path / "data", archive)

    assert staged.counts == {
        "train": {"bicycle": 12, "motorcycle": 12},
        "test": {"bicycle": 6, "motorcycle": 6},
    }
    for split, per_class in staged.counts.items():
        for label, count in per_class.items():
            files = sorted((staged.root / split / label).glob("*.png"))
            assert len(files) == count
            with Image.open(files[0]) as image:
                assert image.mode == "RGB" and image.size == (32, 32)
    with staged.manifest.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 36
    assert set(rows[0]) == {"split", "label", "file", "pixel_sha256"}
    assert all(row["label"] in ("bicycle", "motorcycle") for row in rows)


def test_png_pixels_equal_the_archive_rows_in_official_plane_order(make_archive, tmp_path):
    captured = {}

    def keep_first_test_row(rows):
        captured["row"] = next(r for r in rows["test"] if r[0] == MOTORCYCLE)

    staged = stage_data.stage_local(tmp_path / "data", make_archive(edit=keep_first_test_row))
    label, name, row = captured["row"]
    path = staged.root / "test" / "motorcycle" / name.decode()
    pixels = np.asarray(Image.open(path))
    assert np.array_equal(pixels[..., 0].ravel(), row[:1024])  # red plane first
    assert np.array_equal(pixels[..., 2].ravel(), row[2048:])
    manifest = {r["file"]: r for r in csv.DictReader(staged.manifest.open())}
    assert manifest[name.decode()]["pixel_sha256"] == hashlib.sha256(pixels.tobytes()).hexdigest()


def test_labels_come_from_fine_labels_not_file_names(make_archive, tmp_path):
    def name_a_motorcycle_like_a_bike(rows):
        index = next(i for i, r in enumerate(rows["train"]) if r[0] == MOTORCYCLE)
        label, _, pixels = rows["train"][index]
        rows["train"][index] = (label, b"bike_s_000999.png", pixels)

    staged = stage_data.stage_local(
        tmp_path / "data", make_archive(edit=name_a_motorcycle_like_a_bike)
    )
    assert (staged.root / "train" / "motorcycle" / "bike_s_000999.png").is_file()
    assert not (staged.root / "train" / "bicycle" / "bike_s_000999.png").exists()


def test_corrupt_archive_is_refused(tmp_path):
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a tarball at all" * 100)
    with pytest.raises(stage_data.CorruptArchive, match="not a readable"):
        stage_data.stage_local(tmp_path / "data", garbage)


def test_truncated_archive_is_refused(make_archive, tmp_path):
    archive = make_archive()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(stage_data.CorruptArchive):
        stage_data.stage_local(tmp_path / "data", truncated)


def test_archive_without_a_split_is_refused(tmp_path):
    archive = write_archive(tmp_path / "no-test.tar.gz", {"train": {b"data": []}})
    with pytest.raises(stage_data.CorruptArchive, match="lacks the member cifar-100-python/test"):
        stage_data.read_archive(archive)


def test_gzip_of_a_non_tar_is_refused(tmp_path):
    archive = tmp_path / "plain.tar.gz"
    archive.write_bytes(gzip.compress(b"hello"))
    with pytest.raises(stage_data.CorruptArchive):
        stage_data.read_archive(archive)


def test_missing_class_stops_staging(make_archive, tmp_path):
    archive = make_archive(test={BICYCLE: 6, OTHER: 3})
    with pytest.raises(stage_data.DataQualityError, match="test: no images of class motorcycle"):
        stage_data.stage_local(tmp_path / "data", archive)
    assert not (tmp_path / "data" / "manifest.csv").exists()


def test_unbalanced_classes_stop_staging(make_archive, tmp_path):
    archive = make_archive(train={BICYCLE: 20, MOTORCYCLE: 5})
    with pytest.raises(stage_data.DataQualityError, match="unbalanced"):
        stage_data.stage_local(tmp_path / "data", archive)


def test_duplicate_across_splits_is_reported_as_leakage(make_archive, tmp_path):
    def leak(rows):
        label, name, pixels = rows["train"][0]
        rows["test"][0] = (rows["test"][0][0], rows["test"][0][1], pixels.copy())

    with pytest.raises(stage_data.DataQualityError, match="across splits"):
        stage_data.stage_local(tmp_path / "data", make_archive(edit=leak))


def test_duplicate_within_a_split_is_reported(make_archive, tmp_path):
    def duplicate(rows):
        rows["train"][1] = (rows["train"][1][0], rows["train"][1][1], rows["train"][0][2].copy())

    with pytest.raises(stage_data.DataQualityError, match="within a split"):
        stage_data.stage_local(tmp_path / "data", make_archive(edit=duplicate))


def test_rows_that_are_not_32x32_rgb_are_refused(make_archive, tmp_path):
    def shrink(rows):
        rows["train"][:] = [(label, name, pixels[:1000]) for label, name, pixels in rows["train"]]

    with pytest.raises(stage_data.DataQualityError, match="32x32 RGB"):
        stage_data.stage_local(tmp_path / "data", make_archive(edit=shrink))


class FakeResponse(io.BytesIO):
    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def test_official_download_with_wrong_checksum_is_refused_and_removed(
    make_archive, tmp_path, monkeypatch
):
    payload = make_archive().read_bytes()  # right layout, but not the official md5
    calls = []

    def fake_urlopen(url):
        calls.append(url)
        return FakeResponse(payload)

    monkeypatch.setattr(stage_data.urllib.request, "urlopen", fake_urlopen)
    with pytest.raises(stage_data.ChecksumMismatch, match=stage_data.OFFICIAL_MD5):
        stage_data.stage_local(tmp_path / "data", archive=None, download_dir=tmp_path / "dl")
    assert calls == [stage_data.OFFICIAL_URL]
    assert not (tmp_path / "data").exists()
    assert list((tmp_path / "dl").iterdir()) == []


def test_official_download_with_right_checksum_is_kept_and_reused(make_archive, tmp_path):
    payload = make_archive().read_bytes()
    md5 = hashlib.md5(payload).hexdigest()
    calls = []

    def opener(url):
        calls.append(url)
        return FakeResponse(payload)

    first = stage_data.download_official_archive(tmp_path / "dl", expected_md5=md5, opener=opener)
    second = stage_data.download_official_archive(tmp_path / "dl", expected_md5=md5, opener=opener)
    assert first == second and first.read_bytes() == payload
    assert len(calls) == 1


def test_failed_download_is_a_download_error(tmp_path):
    def opener(url):
        raise OSError("network is unreachable")

    with pytest.raises(stage_data.DownloadError, match="network is unreachable"):
        stage_data.download_official_archive(tmp_path / "dl", opener=opener)


@mock_aws
def test_rerun_uploads_nothing_unchanged(make_archive, tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="scones-data")
    staged = stage_data.stage_local(tmp_path / "data", make_archive())

    first = stage_data.upload_folder(staged.root, "scones-data", "data", s3)
    again = stage_data.stage_local(tmp_path / "data", make_archive())
    second = stage_data.upload_folder(again.root, "scones-data", "data", s3)

    assert first == stage_data.UploadReport(uploaded=37, unchanged=0)  # 36 PNGs + manifest
    assert second == stage_data.UploadReport(uploaded=0, unchanged=37)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="scones-data")["Contents"]]
    assert "data/manifest.csv" in keys
    assert all(key.startswith("data/") for key in keys)

    changed = next((staged.root / "train" / "bicycle").glob("*.png"))
    Image.new("RGB", (32, 32), (1, 2, 3)).save(changed)
    third = stage_data.upload_folder(staged.root, "scones-data", "data", s3)
    assert third == stage_data.UploadReport(uploaded=1, unchanged=36)


def test_cli_reports_a_missing_archive_in_one_line(tmp_path, capsys):
    code = stage_data.main(["--archive", str(tmp_path / "absent.tar.gz"), "--dest", str(tmp_path)])
    error = capsys.readouterr().err.strip()
    assert code == 1
    assert error.splitlines() == [f"error: archive {tmp_path / 'absent.tar.gz'} does not exist"]
