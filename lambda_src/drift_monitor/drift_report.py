"""The drift report of one window of capture against the baseline, and its verdict.

The drift test: a two-sample Kolmogorov-Smirnov test (``ks_test``) on each of two features,
window against baseline: ``top_confidence`` (what the model says) and ``brightness`` (what the
camera sends). A feature drifts when its KS statistic D exceeds the drift threshold *and* its
p-value is below the significance level divided by the number of features tested
(Bonferroni). The window drifts when any feature does; ``score`` is the largest D. The D limit
is the size of change that matters; the p-value gate keeps a small window's sampling noise from
passing it. Image size and class mix are reported, not tested: serialize_image resizes photos
(the test split is 32x32) and the class mix of real traffic need not be the test split's 50/50.
The class mix is by the batch's ``class_names`` (the model's); ``bicycle_share`` in the
timeline (and the handler's ``BicycleShare``) is the share of the first of them.

``status`` is ``no_traffic`` (no record), ``insufficient_data`` (fewer than ``min_records``;
no verdict, ``drift`` false, ``score`` 0.0) or ``ok``. The report (the handler adds
``report_key`` and ``plots``)::

    {"drift": false, "score": 0.07, "test": "ks_2samp", "threshold": 0.2, "records": 212,
     "status": "ok", "significance": 0.01, "min_records": 30,
     "window": {"start": "...Z", "end": "...Z", "minutes": 60},
     "features": {"top_confidence": {"statistic": 0.07, "p_value": 0.61, "method": "exact",
                                     "drift": false, "window_mean": 0.93,
                                     "baseline_mean": 0.94, "window_records": 212,
                                     "baseline_records": 200},
                  "brightness": {...}},
     "confidence_threshold": 0.85, "low_confidence_rate": 0.11,
     "baseline_low_confidence_rate": 0.12,
     "class_names": ["bicycle", "motorcycle"],
     "class_mix": {"bicycle": 0.48, "motorcycle": 0.52}, "baseline_class_mix": {...},
     "mean_brightness": 118.2, "baseline_mean_brightness": 120.9,
     "input": {"formats": {"PNG": 212}, "width": {"min": 32, "max": 32, "mean": 32.0},
               "height": {...}, "unreadable_images": 0},
     "timeline": [{"start": "...Z", "records": 20, "bicycle_share": 0.5,
                   "low_confidence_rate": 0.1}, ...],
     "files": 23, "skipped_lines": 0, "skipped": []}

``skipped`` holds the first ``SKIPPED_EXAMPLES`` malformed lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from baseline_file import baseline_samples
from capture_records import CaptureBatch, CapturedInference
from drift_settings import SIGNIFICANCE_LEVEL, DriftSettings
from ks_test import ks_2samp

TEST_NAME = "ks_2samp"
FEATURES = ("top_confidence", "brightness")
SKIPPED_EXAMPLES = 20
TIMELINE_BINS = 12


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _summary(values: Sequence[int]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "max": max(values), "mean": round(sum(values) / len(values), 3)}


def _low_confidence_rate(confidences: Sequence[float], threshold: float) -> float | None:
    if not confidences:
        return None
    return sum(1 for value in confidences if value < threshold) / len(confidences)


def _class_mix(
    records: Sequence[CapturedInference], class_names: Sequence[str]
) -> dict[str, float] | None:
    if not records:
        return None
    counts = Counter(record.predicted_index for record in records)
    return {name: counts[index] / len(records) for index, name in enumerate(class_names)}


def timeline(
    records: Sequence[CapturedInference],
    class_names: Sequence[str],
    start: datetime,
    end: datetime,
    confidence_threshold: float,
    bins: int = TIMELINE_BINS,
) -> list[dict[str, Any]]:
    """Records, share of the first class (``bicycle_share``) and low-confidence rate in equal
    time bins over [start, end]."""
    width = max((end - start) / bins, timedelta(seconds=1))
    grouped: list[list[CapturedInference]] = [[] for _ in range(bins)]
    for record in records:
        if record.inference_time is not None:
            index = int((record.inference_time - start) / width)
            grouped[min(max(index, 0), bins - 1)].append(record)
    rows = []
    for index, members in enumerate(grouped):
        confidences = [record.top_confidence for record in members]
        mix = _class_mix(members, class_names)
        rows.append(
            {
                "start": _iso(start + index * width),
                "records": len(members),
                "bicycle_share": mix[class_names[0]] if mix else None,
                "low_confidence_rate": _low_confidence_rate(confidences, confidence_threshold),
            }
        )
    return rows


def feature_samples(records: Sequence[CapturedInference]) -> dict[str, list[float]]:
    return {
        "top_confidence": [record.top_confidence for record in records],
        "brightness": [record.brightness for record in records if record.brightness is not None],
    }


def drift_decision(
    window: dict[str, Sequence[float]],
    reference: dict[str, Sequence[float]],
    drift_threshold: float,
    significance: float = SIGNIFICANCE_LEVEL,
) -> tuple[bool, float, dict[str, dict[str, Any]]]:
    """KS test per feature that both sides have; drift when some feature's D exceeds
    ``drift_threshold`` with p < significance / features tested. Returns (drift, max D,
    per-feature results)."""
    tested = [name for name in FEATURES if window.get(name) and reference.get(name)]
    level = significance / max(len(tested), 1)
    results: dict[str, dict[str, Any]] = {}
    for name in tested:
        result = ks_2samp(window[name], reference[name])
        results[name] = {
            "statistic": round(result.statistic, 6),
            "p_value": result.p_value,
            "method": result.method,
            "drift": result.statistic > drift_threshold and result.p_value < level,
            "window_mean": _mean(window[name]),
            "baseline_mean": _mean(reference[name]),
            "window_records": len(window[name]),
            "baseline_records": len(reference[name]),
        }
    score = max((result["statistic"] for result in results.values()), default=0.0)
    return any(result["drift"] for result in results.values()), score, results


def analyse(
    batch: CaptureBatch,
    baseline: dict[str, Any],
    settings: DriftSettings,
    window_start: datetime,
    window_end: datetime,
) -> dict[str, Any]:
    """The drift report of ``batch`` (already restricted to the window) against ``baseline``."""
    records = batch.records
    threshold = settings.confidence_threshold or float(baseline["confidence_threshold"])
    reference = baseline_samples(baseline)
    window = feature_samples(records)
    if not records:
        status = "no_traffic"
    elif len(records) < settings.min_records:
        status = "insufficient_data"
    else:
        status = "ok"
    drift, score, features = False, 0.0, {}
    if status == "ok":
        drift, score, features = drift_decision(
            window, reference, settings.drift_threshold, settings.significance
        )
    readable = [record for record in records if record.image_format is not None]
    return {
        "drift": drift,
        "score": round(score, 6),
        "test": TEST_NAME,
        "threshold": settings.drift_threshold,
        "records": len(records),
        "status": status,
        "significance": settings.significance,
        "min_records": settings.min_records,
        "window": {
            "start": _iso(window_start),
            "end": _iso(window_end),
            "minutes": round((window_end - window_start).total_seconds() / 60, 3),
        },
        "features": features,
        "confidence_threshold": threshold,
        "low_confidence_rate": _low_confidence_rate(window["top_confidence"], threshold),
        "baseline_low_confidence_rate": _low_confidence_rate(
            reference["top_confidence"], threshold
        ),
        "class_names": list(batch.class_names),
        "class_mix": _class_mix(records, batch.class_names),
        "baseline_class_mix": baseline["predicted_class_mix"],
        "mean_brightness": _mean(window["brightness"]),
        "baseline_mean_brightness": _mean(reference["brightness"]),
        "input": {
            "formats": dict(Counter(record.image_format for record in readable)),
            "width": _summary([record.width for record in readable]),
            "height": _summary([record.height for record in readable]),
            "unreadable_images": len(records) - len(readable),
        },
        "timeline": timeline(records, batch.class_names, window_start, window_end, threshold),
        "files": batch.files,
        "skipped_lines": len(batch.skipped),
        "skipped": batch.skipped[:SKIPPED_EXAMPLES],
    }


def verdict_line(report: dict[str, Any]) -> str:
    """One line for people: the verdict, the score against the threshold, the record count."""
    if report["status"] == "no_traffic":
        return "no traffic in the window: no verdict"
    if report["status"] == "insufficient_data":
        return (
            f"insufficient data: {report['records']} records, fewer than "
            f"{report['min_records']}: no verdict"
        )
    drifted = [name for name, result in report["features"].items() if result["drift"]]
    verdict = f"DRIFT in {', '.join(drifted)}" if drifted else "no drift"
    return (
        f"{verdict}: {report['test']} D={report['score']:.3f} (threshold {report['threshold']}) "
        f"over {report['records']} records"
    )
