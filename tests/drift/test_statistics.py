"""The KS test and the drift decision on made-up distributions with known answers."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import baseline_file
import capture_records
import drift_report
import drift_settings
import ks_test
import pytest

from tests.drift.conftest import CLASS_NAMES, confidences, model_record
from training.drift_baseline import DriftBaselineError, build_baseline

START = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def _records(
    top: list[float], brightness: list[float], bicycle_every: int = 2
) -> list[capture_records.CapturedInference]:
    records = []
    for index, (confidence, level) in enumerate(zip(top, brightness, strict=True)):
        pair = (confidence, 1 - confidence)
        probabilities = pair if index % bicycle_every == 0 else pair[::-1]
        records.append(
            capture_records.CapturedInference(
                START + timedelta(seconds=10 * index), probabilities, "PNG", 32, 32, level
            )
        )
    return records


def _baseline(seed: int = 0) -> dict:
    record = model_record(confidences(200, 0.5, 1.0, seed), confidences(200, 60, 200, seed + 1))
    return build_baseline(record)


def _analyse(records, baseline, **settings) -> dict:
    batch = capture_records.CaptureBatch(records=records, skipped=[], class_names=CLASS_NAMES)
    return drift_report.analyse(
        batch, baseline, drift_settings.DriftSettings(**settings), START, END
    )


def test_exact_p_value_equals_brute_force_enumeration():
    sample_a, sample_b = [0.1, 0.5, 0.9, 0.3, 0.65], [0.2, 0.25, 0.7, 0.95]
    pool = sample_a + sample_b
    observed = ks_test.ks_2samp(sample_a, sample_b)
    at_least_as_far = total = 0
    for chosen in itertools.combinations(range(len(pool)), len(sample_a)):
        a = [pool[i] for i in chosen]
        b = [pool[i] for i in range(len(pool)) if i not in chosen]
        total += 1
        at_least_as_far += ks_test.ks_2samp(a, b).statistic >= observed.statistic - 1e-12
    assert observed.method == "exact"
    assert observed.p_value == pytest.approx(at_least_as_far / total)


def test_statistic_is_the_largest_cdf_gap_with_ties():
    assert ks_test.ks_2samp([1, 2, 3, 4], [1, 2, 3, 4]).statistic == 0
    assert ks_test.ks_2samp([1, 2, 3, 4], [5, 6, 7, 8]).statistic == 1
    assert ks_test.ks_2samp([1, 1, 2, 2], [1, 2, 2, 2]).statistic == pytest.approx(0.25)


def test_asymptotic_p_value_is_close_to_the_exact_one():
    rng = random.Random(3)
    a = [rng.gauss(0, 1) for _ in range(120)]
    b = [rng.gauss(0.3, 1) for _ in range(150)]
    result = ks_test.ks_2samp(a, b)
    assert result.method == "exact"
    asymptotic = ks_test.ks_asymptotic_p_value(120, 150, result.statistic)
    assert asymptotic == pytest.approx(result.p_value, abs=0.01)
    assert 0.0 < result.p_value < 0.2


def test_large_samples_use_the_asymptotic_distribution():
    rng = random.Random(4)
    result = ks_test.ks_2samp(
        [rng.random() for _ in range(600)], [rng.random() for _ in range(500)]
    )
    assert result.method == "asymptotic"
    assert result.p_value > 0.01


def test_identical_distributions_do_not_drift():
    baseline = _baseline()
    report = _analyse(_records(baseline["top_confidences"], baseline["brightness"]), baseline)
    assert report["status"] == "ok"
    assert report["drift"] is False
    assert report["score"] == 0.0
    assert report["features"]["top_confidence"]["p_value"] == 1.0


def test_a_fresh_sample_of_the_same_distribution_does_not_drift():
    report = _analyse(
        _records(confidences(200, 0.5, 1.0, 7), confidences(200, 60, 200, 8)), _baseline()
    )
    assert report["drift"] is False
    assert 0.0 < report["score"] < 0.2


def test_darker_images_drift_on_brightness_alone():
    baseline = _baseline()
    darker = [level * 0.4 for level in baseline["brightness"]]
    report = _analyse(_records(baseline["top_confidences"], darker), baseline)
    assert report["drift"] is True
    assert report["features"]["brightness"]["drift"] is True
    assert report["features"]["top_confidence"]["drift"] is False
    assert report["score"] > 0.6


def test_lower_confidence_drifts_on_confidence_alone():
    baseline = _baseline()
    report = _analyse(_records(confidences(200, 0.5, 0.75, 9), baseline["brightness"]), baseline)
    assert report["drift"] is True
    assert report["features"]["top_confidence"]["drift"] is True
    assert report["features"]["brightness"]["drift"] is False
    assert report["low_confidence_rate"] == 1.0
    assert report["baseline_low_confidence_rate"] == pytest.approx(0.6, abs=0.1)


def test_a_big_gap_in_a_small_window_is_not_significant():
    baseline = _baseline()
    # Evenly over [0.63, 1] against a baseline uniform over [0.5, 1]: D about 0.26.
    shifted = [0.63 + 0.37 * (index + 0.5) / 30 for index in range(30)]
    report = _analyse(_records(shifted, confidences(30, 60, 200, 11)), baseline)
    feature = report["features"]["top_confidence"]
    assert feature["statistic"] > report["threshold"]
    assert feature["p_value"] > drift_settings.SIGNIFICANCE_LEVEL / 2
    assert report["drift"] is False


def test_an_empty_window_is_no_traffic_not_drift():
    report = _analyse([], _baseline())
    assert (report["status"], report["drift"], report["records"], report["score"]) == (
        "no_traffic",
        False,
        0,
        0.0,
    )
    assert report["low_confidence_rate"] is None


def test_too_few_records_is_insufficient_data_even_when_shifted():
    baseline = _baseline()
    report = _analyse(_records([0.51] * 10, [5.0] * 10), baseline, min_records=30)
    assert (report["status"], report["drift"], report["records"]) == (
        "insufficient_data",
        False,
        10,
    )
    assert report["features"] == {}
    assert "insufficient data" in drift_report.verdict_line(report)


def test_class_mix_low_confidence_rate_and_timeline_figures():
    baseline = _baseline()
    top = [0.9, 0.6, 0.95, 0.7] * 10  # half below 0.8
    report = _analyse(
        _records(top, [100.0] * 40, bicycle_every=4),
        baseline,
        confidence_threshold=0.8,
        min_records=10,
    )
    assert report["class_mix"] == {"bicycle": 0.25, "motorcycle": 0.75}
    assert report["low_confidence_rate"] == 0.5
    assert report["mean_brightness"] == 100.0
    assert report["input"]["formats"] == {"PNG": 40}
    assert sum(row["records"] for row in report["timeline"]) == 40
    assert len(report["timeline"]) == drift_report.TIMELINE_BINS


def test_records_outside_the_window_are_left_out():
    inside = capture_records.CapturedInference(START + timedelta(minutes=5), (0.9, 0.1))
    before = capture_records.CapturedInference(START - timedelta(seconds=1), (0.9, 0.1))
    at_end = capture_records.CapturedInference(END, (0.9, 0.1))
    undated = capture_records.CapturedInference(None, (0.9, 0.1))
    assert capture_records.in_window([inside, before, at_end, undated], START, END) == [
        inside,
        undated,
    ]


def test_hour_folders_cover_the_window():
    start = datetime(2025, 1, 31, 23, 30, tzinfo=UTC)
    assert capture_records.hour_folders(start, start + timedelta(minutes=60)) == [
        "2025/01/31/23/",
        "2025/02/01/00/",
    ]


def test_build_baseline_from_a_model_record():
    record = model_record([0.9, 0.7], [100.0, 120.0], threshold=0.8)
    baseline = build_baseline(record)
    assert baseline["schema"] == baseline_file.BASELINE_SCHEMA
    assert baseline_file.validate_baseline(baseline) is baseline  # what the monitor reads
    assert baseline["confidence_threshold"] == 0.8
    assert baseline["top_confidences"] == [0.9, 0.7]
    assert baseline["model"]["training_job_name"] == "local-test"
    with pytest.raises(DriftBaselineError, match="evaluation.baseline"):
        build_baseline({"evaluation": {}})
