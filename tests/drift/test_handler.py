"""The drift monitor Lambda end to end on moto S3: capture objects and a baseline in, report
object, PNG plots and EMF metrics out."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import drift_errors
import drift_plots
import pytest
from moto import mock_aws

from lambda_src.drift_monitor import handler as monitor
from tests.drift.conftest import CLASS_NAMES, capture_line, confidences, model_record, png_bytes
from training.drift_baseline import build_baseline

BUCKET = "scones-monitoring"
CAPTURE_PREFIX = "data-capture/scones-classifier/"
BASELINE_KEY = "monitoring/baseline.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class FakeLambdaContext:
    function_name: str = "drift-monitor"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:drift-monitor"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def without_plots(monkeypatch):
    """Skip matplotlib (seconds per call) where a test checks no plot."""
    monkeypatch.setattr(
        monitor,
        "render_plots",
        lambda *_: {drift_plots.CONFIDENCE_PLOT: PNG_MAGIC, drift_plots.TIMELINE_PLOT: PNG_MAGIC},
    )


@pytest.fixture
def s3(monkeypatch):
    for name, value in {
        "BUCKET_NAME": BUCKET,
        "CAPTURE_PREFIX": CAPTURE_PREFIX,
        "BASELINE_KEY": BASELINE_KEY,
        "REPORT_PREFIX": "monitoring/reports/",
        "WINDOW_MINUTES": "60",
        "DRIFT_THRESHOLD": "0.2",
        "CONFIDENCE_THRESHOLD": "0.8",
        "MIN_RECORDS": "30",
        "CLASS_NAMES": ",".join(CLASS_NAMES),
    }.items():
        monkeypatch.setenv(name, value)
    monitor.s3_client.cache_clear()  # the cached client is rebuilt inside moto
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client
    monitor.s3_client.cache_clear()


def _baseline_levels() -> tuple[list[float], list[float]]:
    return confidences(200, 0.5, 1.0, 0), confidences(200, 80, 180, 1)


def _put_baseline(s3) -> None:
    baseline = build_baseline(model_record(*_baseline_levels()))
    s3.put_object(Bucket=BUCKET, Key=BASELINE_KEY, Body=json.dumps(baseline).encode())


def _put_capture(s3, when: datetime, lines: list[str], variant: str = "AllTraffic") -> str:
    key = f"{CAPTURE_PREFIX}{variant}/{when:%Y/%m/%d/%H}/{when:%M-%S}-000-test.jsonl"
    s3.put_object(Bucket=BUCKET, Key=key, Body=("\n".join(lines) + "\n").encode())
    return key


def _traffic(count: int, brightness_factor: float, seed: int) -> list[tuple[float, bytes]]:
    top, levels = confidences(count, 0.5, 1.0, seed), confidences(count, 80, 180, seed + 1)
    return [
        (confidence, png_bytes(int(level * brightness_factor), index))
        for index, (confidence, level) in enumerate(zip(top, levels, strict=True))
    ]


def _fill_window(s3, brightness_factor: float, per_file: int = 10, files: int = 6) -> None:
    """``files`` capture files of ``per_file`` records within the last hour, plus one file
    five hours back that an hour's window must leave out, and one malformed line."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    traffic = _traffic(per_file * files, brightness_factor, seed=5)
    for index in range(files):
        when = now - timedelta(minutes=50 - 8 * index)
        chunk = traffic[index * per_file : (index + 1) * per_file]
        lines = [
            capture_line((c, 1 - c) if n % 2 else (1 - c, c), image, when + timedelta(seconds=n))
            for n, (c, image) in enumerate(chunk)
        ]
        if index == 0:
            lines.append("{truncated")
        _put_capture(s3, when, lines, variant="AllTraffic" if index % 2 else "Canary")
    old = now - timedelta(hours=5)
    _put_capture(s3, old, [capture_line((0.51, 0.49), png_bytes(10, 99), old)] * 40)


def test_a_clean_window_reports_no_drift_with_report_plots_and_metrics(s3, emitted_metrics):
    _put_baseline(s3)
    _fill_window(s3, brightness_factor=1.0)
    report = monitor.lambda_handler({"source": "aws.scheduler"}, FakeLambdaContext())

    assert report["status"] == "ok"
    assert report["records"] == 60
    assert report["drift"] is False
    assert report["skipped_lines"] == 1 and report["skipped"][0]["error"].startswith("not JSON")
    assert report["files"] == 6
    assert report["test"] == "ks_2samp" and report["threshold"] == 0.2
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key=report["report_key"])["Body"].read())
    assert stored == report
    now = datetime.now(UTC)
    assert report["report_key"].startswith(f"monitoring/reports/{now:%Y/%m/%d}/")
    assert report["report_key"].endswith("-report.json")
    for key in report["plots"].values():
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().startswith(PNG_MAGIC)
    assert set(report["plots"]) == {"confidence_histogram", "timeline"}

    metrics = {blob["name"]: blob for blob in emitted_metrics()}
    assert set(metrics) == {
        "CapturedRecords",
        "DriftDetected",
        "DriftScore",
        "LowConfidenceRate",
        "BicycleShare",
        "MeanBrightness",
    }
    assert all(blob["namespace"] == "SconesUnlimited" for blob in metrics.values())
    assert all(blob["dimensions"] == [[]] for blob in metrics.values())
    assert (metrics["DriftDetected"]["value"], metrics["DriftDetected"]["unit"]) == (0.0, "Count")
    assert metrics["CapturedRecords"]["value"] == 60.0
    assert metrics["LowConfidenceRate"]["unit"] == "None"
    assert metrics["LowConfidenceRate"]["value"] == pytest.approx(report["low_confidence_rate"])
    assert metrics["BicycleShare"]["value"] == 0.5


def test_a_dark_window_is_flagged(s3, emitted_metrics, without_plots):
    _put_baseline(s3)
    _fill_window(s3, brightness_factor=0.3)
    report = monitor.lambda_handler({}, FakeLambdaContext())
    assert report["drift"] is True
    assert report["features"]["brightness"]["drift"] is True
    assert report["score"] > 0.8
    metrics = {blob["name"]: blob["value"] for blob in emitted_metrics()}
    assert metrics["DriftDetected"] == 1.0
    assert metrics["DriftScore"] == pytest.approx(report["score"])


def test_the_class_mix_is_by_the_class_names_the_stack_sets(
    s3, monkeypatch, emitted_metrics, without_plots
):
    monkeypatch.setenv("CLASS_NAMES", "road,mountain")
    _put_baseline(s3)
    _fill_window(s3, brightness_factor=1.0)
    report = monitor.lambda_handler({}, FakeLambdaContext())
    assert report["class_names"] == ["road", "mountain"]
    assert report["class_mix"] == {"road": 0.5, "mountain": 0.5}
    metrics = {blob["name"]: blob["value"] for blob in emitted_metrics()}
    assert metrics["BicycleShare"] == report["class_mix"]["road"]  # the first class's share


def test_answers_of_another_number_of_classes_are_skipped_as_malformed(
    s3, monkeypatch, without_plots
):
    monkeypatch.setenv("CLASS_NAMES", "bicycle,motorcycle,scooter")
    _put_baseline(s3)
    _fill_window(s3, brightness_factor=1.0)
    report = monitor.lambda_handler({}, FakeLambdaContext())
    assert (report["status"], report["records"], report["skipped_lines"]) == ("no_traffic", 0, 61)
    assert "is not 3 probabilities" in report["skipped"][1]["error"]


def test_no_traffic_is_reported_as_such_with_only_the_record_count(s3, emitted_metrics):
    _put_baseline(s3)
    report = monitor.lambda_handler({}, FakeLambdaContext())
    assert (report["status"], report["drift"], report["records"]) == ("no_traffic", False, 0)
    assert s3.get_object(Bucket=BUCKET, Key=report["report_key"])
    assert {blob["name"]: blob["value"] for blob in emitted_metrics()} == {"CapturedRecords": 0.0}


def test_the_event_can_widen_the_window(s3, without_plots):
    _put_baseline(s3)
    _fill_window(s3, brightness_factor=1.0)
    report = monitor.lambda_handler({"window_minutes": 360}, FakeLambdaContext())
    assert report["records"] == 100
    assert report["window"]["minutes"] == 360


def test_a_missing_baseline_is_a_typed_error(s3):
    with pytest.raises(drift_errors.BaselineNotFound, match=BASELINE_KEY):
        monitor.lambda_handler({}, FakeLambdaContext())


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("BUCKET_NAME", "", "BUCKET_NAME is not set"),
        ("WINDOW_MINUTES", "0", "WINDOW_MINUTES"),
        ("DRIFT_THRESHOLD", "1.5", "DRIFT_THRESHOLD"),
        ("CONFIDENCE_THRESHOLD", "high", "CONFIDENCE_THRESHOLD"),
        ("MIN_RECORDS", "2.5", "MIN_RECORDS"),
        ("CLASS_NAMES", "", "CLASS_NAMES is not set"),
        ("CLASS_NAMES", "bicycle", "CLASS_NAMES='bicycle' is not two or more distinct"),
        ("CLASS_NAMES", "bicycle,,motorcycle", "CLASS_NAMES"),
        ("CLASS_NAMES", "bicycle,bicycle", "CLASS_NAMES"),
    ],
)
def test_bad_configuration_is_a_typed_error(s3, monkeypatch, name, value, message):
    _put_baseline(s3)
    monkeypatch.setenv(name, value)
    with pytest.raises(drift_errors.ConfigurationError, match=message):
        monitor.lambda_handler({}, FakeLambdaContext())


def test_a_file_of_the_hour_before_the_window_is_read_for_its_late_records(s3, without_plots):
    _put_baseline(s3)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    window_start = now - timedelta(minutes=60 + monitor.CAPTURE_SETTLE_MINUTES)
    opened = window_start - timedelta(hours=1)  # the hour folder before the window's first
    inferred = now - timedelta(minutes=30)
    image = png_bytes(120, 1)
    _put_capture(s3, opened, [capture_line((0.9, 0.1), image, inferred)] * 30)
    report = monitor.lambda_handler({}, FakeLambdaContext())
    assert (report["records"], report["files"], report["status"]) == (30, 1, "ok")


def test_the_report_is_traced_but_not_recorded(s3, without_plots, xray_daemon):
    _put_baseline(s3)
    _fill_window(s3, brightness_factor=1.0)
    report = monitor.lambda_handler({}, FakeLambdaContext())
    xray_daemon.wait_for(lambda received: "## lambda_handler" in _names(received))
    (handler,) = [
        document
        for documents in xray_daemon.traces().values()
        for document in documents
        if document["name"] == "## lambda_handler"
    ]
    assert "metadata" not in handler
    operations = {
        document.get("aws", {}).get("operation")
        for documents in xray_daemon.traces().values()
        for document in documents
    }
    assert {"GetObject", "PutObject", "ListObjectsV2"} <= operations
    assert report["report_key"]
    assert xray_daemon.largest() < 4096


def _names(listener) -> list[str]:
    return [document["name"] for documents in listener.traces().values() for document in documents]


def test_the_monitor_needs_none_of_the_repository():
    """Every file of the function's folder ships with it as a top-level module: with only that
    folder (and the installed packages) on the path, in a fresh process, they import one
    another and never the repository's packages."""
    folder = Path(monitor.__file__).parent
    script = (
        "import json, sys; sys.path[0] = sys.argv[1]; import handler, capture_baseline; "
        "print(json.dumps(sorted({name.partition('.')[0] for name in sys.modules})))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(completed.stdout.splitlines()[-1]))
    assert {"handler", "capture_records", "drift_report", "drift_plots"} <= loaded
    assert not loaded & {"lambda_src", "stacks", "emulator", "training", "tests"}
