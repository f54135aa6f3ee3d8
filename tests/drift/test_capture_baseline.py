"""A reviewed capture window taken as the baseline: clean windows of its kind pass, shifted
ones are caught."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from capture_records import parse_capture_text
from drift_report import analyse
from drift_settings import DriftSettings

from lambda_src.drift_monitor.capture_baseline import main
from tests.drift.conftest import CLASS_NAMES, capture_line, confidences, png_bytes

NAMES = ["--class-names", ",".join(CLASS_NAMES)]

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def window_text(level: int, seed: int, count: int = 80, low: float = 0.6) -> str:
    """Photo-like traffic: brightness around ``level`` with a spread, confidences in [low, 1]."""
    lines = []
    for index, confidence in enumerate(confidences(count, low, 1.0, seed)):
        image = png_bytes(level + (index * 37 + seed) % 60 - 30, seed * 1000 + index, size=48)
        when = START + timedelta(seconds=index)
        lines.append(capture_line((confidence, 1 - confidence), image, when))
    return "\n".join(lines) + "\n"


def test_a_reviewed_window_becomes_the_baseline_that_later_windows_are_compared_with(
    tmp_path, capsys
):
    capture = tmp_path / "capture" / "AllTraffic" / "2026" / "03" / "01" / "12"
    capture.mkdir(parents=True)
    (capture / "a.jsonl").write_text(window_text(140, seed=1))
    output = tmp_path / "baseline.json"
    assert main(["--capture", str(tmp_path / "capture"), "--output", str(output), *NAMES]) == 0
    baseline = json.loads(output.read_text())
    assert len(baseline["brightness"]) == 80 and set(baseline["width"]) == {48}
    assert list(baseline["predicted_class_mix"]) == list(CLASS_NAMES)

    settings = DriftSettings()
    end = START + timedelta(hours=1)

    def window(level: int, seed: int, **options) -> dict:
        text = window_text(level, seed=seed, **options)
        batch = parse_capture_text(text, str(seed), CLASS_NAMES)
        return analyse(batch, baseline, settings, START, end)

    clean, dark, unsure = window(140, 2), window(60, 3), window(140, 4, low=0.5)
    assert clean["status"] == "ok" and clean["drift"] is False
    assert dark["drift"] is True
    assert unsure["score"] > clean["score"]


def test_a_window_outside_the_capture_is_refused(tmp_path, capsys):
    (tmp_path / "a.jsonl").write_text(window_text(140, seed=1))
    code = main(
        ["--capture", str(tmp_path), "--output", str(tmp_path / "b.json"), *NAMES]
        + ["--start", "2027-01-01T00:00:00Z"]
    )
    assert code == 1 and "0 records with a readable image" in capsys.readouterr().err


def test_the_class_names_are_checked(tmp_path, capsys):
    (tmp_path / "a.jsonl").write_text(window_text(140, seed=1))
    code = main(
        ["--capture", str(tmp_path), "--output", str(tmp_path / "b.json")]
        + ["--class-names", "bicycle"]
    )
    assert code == 1 and "--class-names='bicycle' is not two or more" in capsys.readouterr().err
