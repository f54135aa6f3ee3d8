"""``python -m emulator drift`` on a capture folder the emulator's own writer fills, and the
shifted images ``shifted-batch`` sends."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from emulator.__main__ import SHIFT_NAMES, main
from emulator.capture import CaptureConfig, CaptureWriter
from emulator.drift import SHIFTS, make_batch, shift_image
from tests.drift.conftest import confidences, model_record, png_bytes

BASELINE_CONFIDENCES = confidences(200, 0.5, 1.0, 0)
BASELINE_BRIGHTNESS = confidences(200, 80, 180, 1)


def _write_record(folder: Path) -> Path:
    path = folder / "model-record.json"
    path.write_text(json.dumps(model_record(BASELINE_CONFIDENCES, BASELINE_BRIGHTNESS)))
    return path


def _fill_capture(folder: Path, count: int, brightness_factor: float) -> None:
    """``count`` records through the emulator's CaptureWriter: the layout classify writes."""
    writer = CaptureWriter(
        CaptureConfig(local_dir=folder, flush_records=25, flush_seconds=60),
        endpoint_name="scones-classifier",
        variant_name="AllTraffic",
    )
    start = datetime(2025, 1, 31, 11, 50, tzinfo=UTC)  # crosses an hour folder
    top, levels = confidences(count, 0.5, 1.0, 2), confidences(count, 80, 180, 3)
    for index, (confidence, level) in enumerate(zip(top, levels, strict=True)):
        probabilities = [confidence, 1 - confidence] if index % 2 else [1 - confidence, confidence]
        writer.record(
            png_bytes(int(level * brightness_factor), index),
            "image/png",
            json.dumps(probabilities).encode(),
            "application/json",
            now=start + timedelta(seconds=10 * index),
        )
    writer.close()


def _run_drift(capsys, *arguments: str) -> dict:
    assert main(["drift", *arguments]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1
    return json.loads(printed[0])


@pytest.mark.parametrize("brightness_factor, drift", [(1.0, False), (0.4, True)])
def test_drift_command_reads_a_capture_folder(tmp_path, capsys, brightness_factor, drift):
    record = _write_record(tmp_path)
    capture = tmp_path / "capture"
    _fill_capture(capture, 120, brightness_factor)
    assert len(list(capture.rglob("*.jsonl"))) == 6
    report_dir = tmp_path / "report"
    report = _run_drift(
        capsys,
        "--model", str(record),
        "--capture-dir", str(capture),
        "--report-dir", str(report_dir),
    )  # fmt: skip
    assert report["drift"] is drift
    assert report["records"] == 120 and report["files"] == 6
    assert report["test"] == "ks_2samp" and report["threshold"] == 0.2
    assert report["features"]["brightness"]["drift"] is drift
    assert json.loads((report_dir / "report.json").read_text())["score"] == report["score"]
    for plot in report["plots"].values():
        assert Path(plot).read_bytes().startswith(b"\x89PNG")


def test_drift_command_reports_an_empty_folder_as_no_traffic(tmp_path, capsys):
    (tmp_path / "capture").mkdir()
    report = _run_drift(
        capsys,
        "--model", str(_write_record(tmp_path)),
        "--capture-dir", str(tmp_path / "capture"),
        "--report-dir", str(tmp_path / "report"),
        "--threshold", "0.3",
    )  # fmt: skip
    assert (report["status"], report["drift"], report["threshold"]) == ("no_traffic", False, 0.3)


def test_drift_command_says_when_the_record_has_no_baseline(tmp_path, capsys):
    record = tmp_path / "model-record.json"
    record.write_text(json.dumps({"model_data_url": "/tmp/model.tar.gz", "evaluation": {}}))
    (tmp_path / "capture").mkdir()
    assert main(["drift", "--model", str(record), "--capture-dir", str(tmp_path / "capture")]) == 2
    assert "evaluation.baseline" in capsys.readouterr().err


def _brightness(image: Image.Image) -> float:
    return sum(ImageStat.Stat(image).mean) / 3


def test_shifts_change_the_image_as_named():
    image = Image.open(io.BytesIO(png_bytes(150, 1)))
    assert _brightness(shift_image(image, "dark")) == pytest.approx(0.4 * _brightness(image), 0.02)
    assert shift_image(image, "clean").tobytes() == image.convert("RGB").tobytes()
    rotated = shift_image(image, "rotate")
    assert rotated.getpixel((0, 31)) == image.getpixel((0, 0))
    blurred = shift_image(image, "blur")
    assert ImageStat.Stat(blurred).stddev[0] < ImageStat.Stat(image).stddev[0] / 2
    assert SHIFTS == SHIFT_NAMES


def test_batches_are_seeded_draws_of_the_test_images(tmp_path):
    paths = []
    for index in range(5):
        path = tmp_path / "test" / "bicycle" / f"{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(40 * index, index))
        paths.append(path)
    first, again = make_batch(paths, "dark", 12, seed=3), make_batch(paths, "dark", 12, seed=3)
    assert [image.body for image in first] == [image.body for image in again]
    assert len(first) == 12
    assert [i.name for i in make_batch(paths, "dark", 12, seed=4)] != [i.name for i in first]
