"""Compare the endpoint's recent data capture with the test-split baseline; report drift.

Run on a schedule (EventBridge Scheduler). The event's content is ignored, except an
optional override of the window length: ``{"window_minutes": 30}``.

What it does, once per call:
1. reads every line of every ``.jsonl`` capture file under ``CAPTURE_PREFIX`` in the
   ``<variant>/yyyy/mm/dd/hh/`` folders of the window's hours and of the hour before it (a
   file opened just before the hour can hold records after it), and keeps the records whose
   ``eventMetadata.inferenceTime`` falls in the window (records without one are kept). The
   window is the ``WINDOW_MINUTES`` minutes ending ``CAPTURE_SETTLE_MINUTES`` (5) before the
   current minute: the endpoint buffers capture for a few minutes before writing it to S3,
   and with a window as long as the schedule's rate consecutive windows still tile;
2. turns each record into figures: top-class confidence and predicted class from
   ``captureData.endpointOutput`` (``[p_bicycle, p_motorcycle]``, encoding JSON, CSV or
   BASE64), image format, size and brightness (mean of the RGB pixel values, 0-255) from
   ``captureData.endpointInput`` (BASE64 image);
3. compares them with the baseline (below) using the drift test, writes the report JSON and
   two PNG plots, publishes the metrics, and returns the report.

Blank lines are ignored. A line that is not a readable capture record raises
``MalformedCaptureRecord`` internally; it is counted and skipped (``skipped_lines`` and the
first ``SKIPPED_EXAMPLES`` in ``skipped`` of the report), never fatal. A record whose input is
not a decodable image still counts for the output figures (``input.unreadable_images``).

The drift test
--------------
A two-sample Kolmogorov-Smirnov test (two-sided; exact p-value by lattice-path counting when
``n * m <= EXACT_KS_LIMIT``, else the asymptotic Kolmogorov distribution with Stephens'
correction) on each of two features, window against baseline:
``top_confidence`` (what the model says) and ``brightness`` (what the camera sends). A feature
drifts when its KS statistic D (the largest gap between the two empirical CDFs, 0-1) exceeds
``DRIFT_THRESHOLD`` *and* its p-value is below ``SIGNIFICANCE_LEVEL`` divided by the number of
features tested (Bonferroni). The window drifts when any feature does. ``score`` is the
largest D. The D limit is the size of change that matters; the p-value gate keeps a small
window's sampling noise from passing it. Image size and class mix are reported, not tested:
serialize_image resizes photos (the test split is 32x32) and the class mix of real traffic
need not be the test split's 50/50.

``status`` is ``no_traffic`` (no record), ``insufficient_data`` (fewer than ``MIN_RECORDS``;
no verdict, ``drift`` false, ``score`` 0.0) or ``ok``.

Baseline file (JSON at ``s3://BUCKET_NAME/BASELINE_KEY``; ``build_baseline(model_record)``
makes it from the model record ``training/train.py`` writes)::

    {"schema": "scones-drift-baseline/1",
     "model": {"training_job_name": "...", "model_data_url": "...", "created_at": "..."},
     "confidence_threshold": 0.85,          # evaluation.recommended_threshold
     "top_confidences": [0.97, ...],        # one per test image, 0.5-1
     "brightness": [121.3, ...],            # one per test image, 0-255
     "width": [32, ...], "height": [32, ...],
     "predicted_class_mix": {"bicycle": 0.5, "motorcycle": 0.5},
     "low_confidence_rate": 0.12}           # at confidence_threshold

Environment (read at call time):
    BUCKET_NAME            bucket of the capture, the baseline and the reports (required)
    CAPTURE_PREFIX         capture folder of one endpoint, e.g. ``data-capture/<endpoint>/``
                           (required)
    BASELINE_KEY           key of the baseline file, e.g. ``monitoring/baseline.json``
                           (required)
    REPORT_PREFIX          where reports go, e.g. ``monitoring/reports/`` (required)
    WINDOW_MINUTES         window length in minutes, 1-10080 (default 60)
    DRIFT_THRESHOLD        KS statistic D above which a feature may drift, (0, 1)
                           (default 0.2)
    CONFIDENCE_THRESHOLD   the workflow's threshold, (0, 1], for the low-confidence rate
                           (default: the baseline's ``confidence_threshold``)
    MIN_RECORDS            fewest records for a verdict, >= 1 (default 30)

Output: ``REPORT_PREFIX<yyyy>/<mm>/<dd>/<hhmm>-report.json`` (the report),
``<hhmm>-confidence.png`` (confidence and brightness histograms against the baseline) and
``<hhmm>-timeline.png`` (bicycle share and low-confidence rate over the window), named after
the window's end (UTC). The returned report::

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
     "class_mix": {"bicycle": 0.48, "motorcycle": 0.52}, "baseline_class_mix": {...},
     "mean_brightness": 118.2, "baseline_mean_brightness": 120.9,
     "input": {"formats": {"PNG": 212}, "width": {"min": 32, "max": 32, "mean": 32.0},
               "height": {...}, "unreadable_images": 0},
     "timeline": [{"start": "...Z", "records": 20, "bicycle_share": 0.5,
                   "low_confidence_rate": 0.1}, ...],
     "files": 23, "skipped_lines": 0, "skipped": [],
     "report_key": "monitoring/reports/2025/01/31/1400-report.json",
     "plots": {"confidence_histogram": "...-confidence.png", "timeline": "...-timeline.png"}}

Metrics (CloudWatch EMF, namespace ``POWERTOOLS_METRICS_NAMESPACE``, no dimensions: the
``service`` dimension Powertools would add is removed). Always: ``CapturedRecords`` (Count).
Only when ``status`` is ``ok``: ``DriftDetected`` (Count, 1 or 0), ``DriftScore`` (None, the
largest D, 0-1), ``LowConfidenceRate`` (None, a fraction 0-1), ``BicycleShare`` (None, a
fraction 0-1), ``MeanBrightness`` (None, 0-255).

Errors (class names):
    ConfigurationError   an environment variable is missing or out of range
    BaselineNotFound     no object at BASELINE_KEY
    InvalidBaseline      the baseline (or the model record it is built from) lacks a field
                         or has one of the wrong kind
    CaptureReadError     S3 refused to list or read the capture
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from PIL import Image, ImageStat, UnidentifiedImageError

CLASS_NAMES = ("bicycle", "motorcycle")
BASELINE_SCHEMA = "scones-drift-baseline/1"
TEST_NAME = "ks_2samp"
FEATURES = ("top_confidence", "brightness")
SIGNIFICANCE_LEVEL = 0.01
EXACT_KS_LIMIT = 250_000
DEFAULT_WINDOW_MINUTES = 60
CAPTURE_SETTLE_MINUTES = 5
LONGEST_WINDOW_MINUTES = 7 * 24 * 60
DEFAULT_DRIFT_THRESHOLD = 0.2
DEFAULT_MIN_RECORDS = 30
DEFAULT_METRICS_NAMESPACE = "SconesUnlimited"
SKIPPED_EXAMPLES = 20
TIMELINE_BINS = 12
CONFIDENCE_PLOT = "confidence.png"
TIMELINE_PLOT = "timeline.png"

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class ConfigurationError(Exception):
    """An environment variable is missing or has a value this function cannot use."""


class BaselineNotFound(Exception):
    """The baseline object does not exist."""


class InvalidBaseline(ValueError):
    """The baseline, or the model record it is built from, is incomplete or malformed."""


class CaptureReadError(Exception):
    """S3 refused to list or read the capture files."""


class MalformedCaptureRecord(ValueError):
    """One line of a capture file is not a readable SageMaker capture record."""


# -- capture records ----------------------------------------------------------------------


@dataclass(frozen=True)
class CapturedInference:
    """The figures of one capture record. Image fields are None when the input is missing
    or not a decodable image."""

    inference_time: datetime | None
    probabilities: tuple[float, float]
    image_format: str | None = None
    width: int | None = None
    height: int | None = None
    brightness: float | None = None

    @property
    def top_confidence(self) -> float:
        return max(self.probabilities)

    @property
    def predicted_class(self) -> str:
        return CLASS_NAMES[self.probabilities.index(self.top_confidence)]


@dataclass
class CaptureBatch:
    """The records read from some capture files, and the lines skipped as malformed."""

    records: list[CapturedInference]
    skipped: list[dict[str, Any]]
    files: int = 0

    def extend(self, other: CaptureBatch) -> None:
        self.records.extend(other.records)
        self.skipped.extend(other.skipped)
        self.files += other.files


def _payload_bytes(entry: Any, name: str) -> tuple[bytes, str]:
    if not isinstance(entry, dict) or not isinstance(entry.get("data"), str):
        raise MalformedCaptureRecord(f"{name} has no string 'data'")
    encoding = str(entry.get("encoding", "")).upper()
    if encoding == "BASE64":
        try:
            return base64.b64decode(entry["data"], validate=True), encoding
        except (binascii.Error, ValueError) as error:
            raise MalformedCaptureRecord(f"{name} data is not valid BASE64: {error}") from error
    if encoding in ("JSON", "CSV"):
        return entry["data"].encode("utf-8"), encoding
    raise MalformedCaptureRecord(f"{name} encoding {entry.get('encoding')!r} is not known")


def _probabilities(output: Any) -> tuple[float, float]:
    body, encoding = _payload_bytes(output, "endpointOutput")
    text = body.decode("utf-8", errors="replace").strip()
    try:
        if encoding == "CSV" or not text.startswith("["):
            values = [float(part) for part in text.split(",")]
        else:
            values = json.loads(text)
    except ValueError as error:
        raise MalformedCaptureRecord(f"endpointOutput {text[:60]!r} is not a list") from error
    well_formed = (
        isinstance(values, list)
        and len(values) == len(CLASS_NAMES)
        and all(
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and 0.0 <= value <= 1.0
            for value in values
        )
    )
    if not well_formed:
        raise MalformedCaptureRecord(
            f"endpointOutput {text[:60]!r} is not {len(CLASS_NAMES)} probabilities in [0, 1]"
        )
    return float(values[0]), float(values[1])


def image_figures(body: bytes) -> tuple[str, int, int, float]:
    """Format, width, height and brightness (mean of the RGB values, 0-255) of an image."""
    with Image.open(io.BytesIO(body)) as image:
        image_format = image.format or "unknown"
        width, height = image.size
        band_means = ImageStat.Stat(image.convert("RGB")).mean
    return image_format, width, height, sum(band_means) / len(band_means)


def _inference_time(metadata: Any) -> datetime | None:
    if not isinstance(metadata, dict) or not isinstance(metadata.get("inferenceTime"), str):
        return None
    try:
        moment = datetime.fromisoformat(metadata["inferenceTime"].replace("Z", "+00:00"))
    except ValueError as error:
        raise MalformedCaptureRecord(
            f"inferenceTime {metadata['inferenceTime']!r} is not an ISO 8601 time"
        ) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_capture_record(line: str) -> CapturedInference:
    """One capture line -> its figures; MalformedCaptureRecord when it cannot be read."""
    try:
        record = json.loads(line)
    except ValueError as error:
        raise MalformedCaptureRecord(f"not JSON: {error}") from error
    if not isinstance(record, dict) or not isinstance(record.get("captureData"), dict):
        raise MalformedCaptureRecord("no captureData object")
    capture = record["captureData"]
    if "endpointOutput" not in capture:
        raise MalformedCaptureRecord("captureData has no endpointOutput")
    probabilities = _probabilities(capture["endpointOutput"])
    moment = _inference_time(record.get("eventMetadata"))
    if "endpointInput" not in capture:
        return CapturedInference(moment, probabilities)
    body, _ = _payload_bytes(capture["endpointInput"], "endpointInput")
    try:
        image_format, width, height, brightness = image_figures(body)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return CapturedInference(moment, probabilities)
    return CapturedInference(moment, probabilities, image_format, width, height, brightness)


def parse_capture_text(text: str, source: str) -> CaptureBatch:
    """Every non-blank line of one capture file; malformed lines are counted, not fatal."""
    batch = CaptureBatch(records=[], skipped=[], files=1)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            batch.records.append(parse_capture_record(line))
        except MalformedCaptureRecord as error:
            batch.skipped.append({"source": source, "line": number, "error": str(error)})
    return batch


def in_window(
    records: Iterable[CapturedInference], start: datetime, end: datetime
) -> list[CapturedInference]:
    """The records inferred in [start, end); records without a time are kept."""
    return [
        record
        for record in records
        if record.inference_time is None or start <= record.inference_time < end
    ]


# -- statistics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KsResult:
    statistic: float
    p_value: float
    method: str


def _ks_gap(sample_a: Sequence[float], sample_b: Sequence[float]) -> int:
    """The KS statistic times n*m, an integer: max over x of |m*#(a<=x) - n*#(b<=x)|."""
    a, b = sorted(sample_a), sorted(sample_b)
    n, m = len(a), len(b)
    i = j = gap = 0
    while i < n and j < m:
        value = min(a[i], b[j])
        while i < n and a[i] == value:
            i += 1
        while j < m and b[j] == value:
            j += 1
        gap = max(gap, abs(i * m - j * n))
    return gap


def ks_exact_p_value(n: int, m: int, gap: int) -> float:
    """P(D >= gap/(n*m)) for two samples of sizes n and m from one continuous distribution:
    1 minus the share of the C(n+m, n) orderings whose lattice path stays strictly inside
    |i*m - j*n| < gap (exact integers)."""
    if gap <= 0:
        return 1.0
    row = [1 if abs(j * n) < gap else 0 for j in range(m + 1)]
    for j in range(1, m + 1):
        row[j] = row[j - 1] if row[j] else 0
    for i in range(1, n + 1):
        previous = 0
        for j in range(m + 1):
            inside = abs(i * m - j * n) < gap
            previous = (row[j] + previous) if inside else 0
            row[j] = previous
    return max(0.0, 1.0 - row[m] / math.comb(n + m, n))


def kolmogorov_survival(statistic: float) -> float:
    """Q_KS(x) = 2 * sum_{k>=1} (-1)^(k-1) exp(-2 k^2 x^2), the limit law of sqrt(n) D."""
    if statistic < 0.2:
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = 2.0 * (-1) ** (k - 1) * math.exp(-2.0 * k * k * statistic * statistic)
        total += term
        if abs(term) < 1e-12:
            break
    return min(1.0, max(0.0, total))


def ks_asymptotic_p_value(n: int, m: int, statistic: float) -> float:
    effective = math.sqrt(n * m / (n + m))
    return kolmogorov_survival((effective + 0.12 + 0.11 / effective) * statistic)


def ks_2samp(sample_a: Sequence[float], sample_b: Sequence[float]) -> KsResult:
    """Two-sided two-sample Kolmogorov-Smirnov test (ties: conservative p-value)."""
    n, m = len(sample_a), len(sample_b)
    if n == 0 or m == 0:
        raise ValueError("the KS test needs two non-empty samples")
    gap = _ks_gap(sample_a, sample_b)
    statistic = gap / (n * m)
    if n * m <= EXACT_KS_LIMIT:
        return KsResult(statistic, ks_exact_p_value(n, m, gap), "exact")
    return KsResult(statistic, ks_asymptotic_p_value(n, m, statistic), "asymptotic")


# -- baseline -----------------------------------------------------------------------------


def _number_list(container: dict[str, Any], name: str, where: str) -> list[float]:
    values = container.get(name)
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    ):
        raise InvalidBaseline(f"{where} needs a non-empty list of numbers {name!r}")
    return [float(v) for v in values]


def validate_baseline(baseline: Any) -> dict[str, Any]:
    """The baseline as this function reads it; InvalidBaseline when it cannot be used."""
    if not isinstance(baseline, dict) or baseline.get("schema") != BASELINE_SCHEMA:
        raise InvalidBaseline(f"the baseline is not a {BASELINE_SCHEMA!r} JSON object")
    for name in ("top_confidences", "brightness"):
        _number_list(baseline, name, "the baseline")
    threshold = baseline.get("confidence_threshold")
    if not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise InvalidBaseline(f"baseline confidence_threshold {threshold!r} is not in (0, 1]")
    if not isinstance(baseline.get("predicted_class_mix"), dict):
        raise InvalidBaseline("the baseline needs a predicted_class_mix object")
    return baseline


def build_baseline(model_record: dict[str, Any]) -> dict[str, Any]:
    """The baseline file (the JSON shape in the module docstring) from a model record:
    its ``evaluation.baseline`` and ``evaluation.recommended_threshold``."""
    evaluation = model_record.get("evaluation") if isinstance(model_record, dict) else None
    source = evaluation.get("baseline") if isinstance(evaluation, dict) else None
    if not isinstance(source, dict):
        raise InvalidBaseline("the model record has no evaluation.baseline (train again?)")
    baseline = {
        "schema": BASELINE_SCHEMA,
        "model": {
            name: model_record.get(name)
            for name in ("training_job_name", "model_data_url", "created_at")
        },
        "confidence_threshold": evaluation.get("recommended_threshold"),
        "top_confidences": _number_list(source, "top_confidences", "evaluation.baseline"),
        "brightness": _number_list(source, "brightness", "evaluation.baseline"),
        "width": [int(v) for v in _number_list(source, "width", "evaluation.baseline")],
        "height": [int(v) for v in _number_list(source, "height", "evaluation.baseline")],
        "predicted_class_mix": source.get("predicted_class_mix"),
        "low_confidence_rate": source.get("low_confidence_rate"),
    }
    return validate_baseline(baseline)


# -- the report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftSettings:
    drift_threshold: float = DEFAULT_DRIFT_THRESHOLD
    confidence_threshold: float | None = None
    min_records: int = DEFAULT_MIN_RECORDS
    significance: float = SIGNIFICANCE_LEVEL


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


def _class_mix(records: Sequence[CapturedInference]) -> dict[str, float] | None:
    if not records:
        return None
    counts = Counter(record.predicted_class for record in records)
    return {name: counts[name] / len(records) for name in CLASS_NAMES}


def timeline(
    records: Sequence[CapturedInference],
    start: datetime,
    end: datetime,
    confidence_threshold: float,
    bins: int = TIMELINE_BINS,
) -> list[dict[str, Any]]:
    """Records, bicycle share and low-confidence rate in equal time bins over [start, end]."""
    width = max((end - start) / bins, timedelta(seconds=1))
    grouped: list[list[CapturedInference]] = [[] for _ in range(bins)]
    for record in records:
        if record.inference_time is not None:
            index = int((record.inference_time - start) / width)
            grouped[min(max(index, 0), bins - 1)].append(record)
    rows = []
    for index, members in enumerate(grouped):
        confidences = [record.top_confidence for record in members]
        mix = _class_mix(members)
        rows.append(
            {
                "start": _iso(start + index * width),
                "records": len(members),
                "bicycle_share": mix["bicycle"] if mix else None,
                "low_confidence_rate": _low_confidence_rate(confidences, confidence_threshold),
            }
        )
    return rows


def feature_samples(records: Sequence[CapturedInference]) -> dict[str, list[float]]:
    return {
        "top_confidence": [record.top_confidence for record in records],
        "brightness": [record.brightness for record in records if record.brightness is not None],
    }


def baseline_samples(baseline: dict[str, Any]) -> dict[str, list[float]]:
    return {
        "top_confidence": [float(v) for v in baseline["top_confidences"]],
        "brightness": [float(v) for v in baseline["brightness"]],
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
        "class_mix": _class_mix(records),
        "baseline_class_mix": baseline["predicted_class_mix"],
        "mean_brightness": _mean(window["brightness"]),
        "baseline_mean_brightness": _mean(reference["brightness"]),
        "input": {
            "formats": dict(Counter(record.image_format for record in readable)),
            "width": _summary([record.width for record in readable]),
            "height": _summary([record.height for record in readable]),
            "unreadable_images": len(records) - len(readable),
        },
        "timeline": timeline(records, window_start, window_end, threshold),
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


# -- plots --------------------------------------------------------------------------------


def render_plots(
    report: dict[str, Any], records: Sequence[CapturedInference], baseline: dict[str, Any]
) -> dict[str, bytes]:
    """PNG bytes by name: the confidence and brightness histograms against the baseline, and
    the bicycle share and low-confidence rate over the window."""
    os.environ.setdefault("MPLCONFIGDIR", "/tmp/matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = feature_samples(records)
    reference = baseline_samples(baseline)
    figure, (confidence_axes, brightness_axes) = plt.subplots(1, 2, figsize=(10, 4))
    panels = (
        (confidence_axes, "top_confidence", "top-class probability", (0.5, 1.0)),
        (brightness_axes, "brightness", "mean pixel value (0-255)", (0.0, 255.0)),
    )
    for axes, name, label, value_range in panels:
        axes.hist(
            reference[name],
            bins=25,
            range=value_range,
            density=True,
            alpha=0.5,
            label=f"baseline ({len(reference[name])})",
            color="tab:gray",
        )
        if window[name]:
            axes.hist(
                window[name],
                bins=25,
                range=value_range,
                density=True,
                histtype="step",
                linewidth=2,
                label=f"window ({len(window[name])})",
                color="tab:blue",
            )
        result = report["features"].get(name)
        title = f"{name}: D={result['statistic']:.3f}" if result else name
        axes.set_title(title + (" DRIFT" if result and result["drift"] else ""))
        axes.set_xlabel(label)
        axes.set_ylabel("density")
        axes.legend()
    confidence_axes.axvline(report["confidence_threshold"], color="tab:red", linestyle="--")
    figure.suptitle(verdict_line(report))
    figure.tight_layout()
    plots = {CONFIDENCE_PLOT: _png(figure, plt)}

    rows = report["timeline"]
    starts = [datetime.fromisoformat(row["start"].replace("Z", "+00:00")) for row in rows]
    bin_width = starts[1] - starts[0]
    centres = [start + bin_width / 2 for start in starts]
    figure, axes = plt.subplots(figsize=(10, 4))
    for key, label, color, reference_value in (
        (
            "bicycle_share",
            "bicycle share",
            "tab:green",
            (report["baseline_class_mix"] or {}).get("bicycle"),
        ),
        (
            "low_confidence_rate",
            "low-confidence rate",
            "tab:red",
            report["baseline_low_confidence_rate"],
        ),
    ):
        values = [math.nan if row[key] is None else row[key] for row in rows]
        axes.plot(centres, values, marker="o", color=color, label=label)
        if reference_value is not None:
            axes.axhline(
                reference_value, color=color, linestyle="--", alpha=0.6, label=f"{label}, baseline"
            )
    counts = axes.twinx()
    counts.bar(
        centres,
        [row["records"] for row in rows],
        width=bin_width * 0.8,
        alpha=0.15,
        color="tab:blue",
    )
    counts.set_ylabel("records")
    axes.set_ylim(0, 1.02)
    axes.set_ylabel("share of records")
    axes.set_title(
        f"Class mix and low-confidence rate, {report['window']['start']} to "
        f"{report['window']['end']}"
    )
    axes.legend(loc="upper left", fontsize="small")
    figure.autofmt_xdate()
    figure.tight_layout()
    plots[TIMELINE_PLOT] = _png(figure, plt)
    return plots


def _png(figure: Any, plt: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


# -- AWS ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitorConfig:
    bucket: str
    capture_prefix: str
    baseline_key: str
    report_prefix: str
    window_minutes: int
    settings: DriftSettings


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set")
    return value


def _number(name: str, default: float, low: float, high: float, integer: bool = False) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = math.nan
    if not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise ConfigurationError(f"{name}={raw!r} is not {kind} in [{low}, {high}]")
    return value


def _folder(prefix: str) -> str:
    return prefix if prefix.endswith("/") else prefix + "/"


def load_config(event: Any) -> MonitorConfig:
    """The environment (and the event's optional ``window_minutes``), validated."""
    window = int(
        _number("WINDOW_MINUTES", DEFAULT_WINDOW_MINUTES, 1, LONGEST_WINDOW_MINUTES, integer=True)
    )
    if isinstance(event, dict) and "window_minutes" in event:
        override = event["window_minutes"]
        if (
            isinstance(override, bool)
            or not isinstance(override, int)
            or not (1 <= override <= LONGEST_WINDOW_MINUTES)
        ):
            raise ConfigurationError(
                f"event window_minutes {override!r} is not an integer in "
                f"[1, {LONGEST_WINDOW_MINUTES}]"
            )
        window = override
    drift_threshold = _number("DRIFT_THRESHOLD", DEFAULT_DRIFT_THRESHOLD, 0.0, 1.0)
    if not 0.0 < drift_threshold < 1.0:
        raise ConfigurationError(f"DRIFT_THRESHOLD={drift_threshold} is not in (0, 1)")
    confidence: float | None = None
    if os.environ.get("CONFIDENCE_THRESHOLD", "").strip():
        confidence = _number("CONFIDENCE_THRESHOLD", math.nan, 0.0, 1.0)
        if confidence == 0.0:
            raise ConfigurationError("CONFIDENCE_THRESHOLD=0 is not in (0, 1]")
    return MonitorConfig(
        bucket=_required("BUCKET_NAME"),
        capture_prefix=_folder(_required("CAPTURE_PREFIX")),
        baseline_key=_required("BASELINE_KEY"),
        report_prefix=_folder(_required("REPORT_PREFIX")),
        window_minutes=window,
        settings=DriftSettings(
            drift_threshold=drift_threshold,
            confidence_threshold=confidence,
            min_records=int(_number("MIN_RECORDS", DEFAULT_MIN_RECORDS, 1, 10**9, integer=True)),
        ),
    )


@functools.cache
def s3_client() -> Any:
    return boto3.client("s3")


def reset_clients() -> None:
    """Forget the cached clients (tests, or a changed environment)."""
    s3_client.cache_clear()


def load_baseline(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
            raise BaselineNotFound(f"no baseline at s3://{bucket}/{key}") from error
        raise
    try:
        baseline = json.loads(body)
    except ValueError as error:
        raise InvalidBaseline(f"s3://{bucket}/{key} is not JSON: {error}") from error
    return validate_baseline(baseline)


def hour_folders(start: datetime, end: datetime) -> list[str]:
    """The ``yyyy/mm/dd/hh/`` folders that [start, end) touches."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    folders = []
    while hour < end:
        folders.append(f"{hour:%Y/%m/%d/%H}/")
        hour += timedelta(hours=1)
    return folders


def capture_keys(s3: Any, bucket: str, prefix: str, start: datetime, end: datetime) -> list[str]:
    """Keys of the ``.jsonl`` files in every variant's hour folders of the window."""
    paginator = s3.get_paginator("list_objects_v2")
    try:
        variants = [
            common["Prefix"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
            for common in page.get("CommonPrefixes", [])
        ]
        return [
            item["Key"]
            for variant in variants
            for folder in hour_folders(start - timedelta(hours=1), end)
            for page in paginator.paginate(Bucket=bucket, Prefix=variant + folder)
            for item in page.get("Contents", [])
            if item["Key"].endswith(".jsonl")
        ]
    except ClientError as error:
        raise CaptureReadError(f"cannot list s3://{bucket}/{prefix}: {error}") from error


def read_capture(s3: Any, bucket: str, keys: Sequence[str]) -> CaptureBatch:
    batch = CaptureBatch(records=[], skipped=[])
    for key in keys:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            raise CaptureReadError(f"cannot read s3://{bucket}/{key}: {error}") from error
        batch.extend(parse_capture_text(body.decode("utf-8", errors="replace"), key))
    return batch


def publish_metrics(report: dict[str, Any]) -> None:
    metrics.add_metric(name="CapturedRecords", unit=MetricUnit.Count, value=report["records"])
    if report["status"] != "ok":
        return
    metrics.add_metric(name="DriftDetected", unit=MetricUnit.Count, value=int(report["drift"]))
    metrics.add_metric(name="DriftScore", unit=MetricUnit.NoUnit, value=report["score"])
    metrics.add_metric(
        name="LowConfidenceRate", unit=MetricUnit.NoUnit, value=report["low_confidence_rate"]
    )
    metrics.add_metric(
        name="BicycleShare", unit=MetricUnit.NoUnit, value=report["class_mix"]["bicycle"]
    )
    if report["mean_brightness"] is not None:
        metrics.add_metric(
            name="MeanBrightness", unit=MetricUnit.NoUnit, value=report["mean_brightness"]
        )


def _refresh_metrics_settings() -> None:
    """Namespace from the current env; no ``service`` dimension (alarms match no dimension)."""
    metrics.namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_METRICS_NAMESPACE
    metrics.service = None


@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)  # the report, with skipped lines
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    _refresh_metrics_settings()
    config = load_config(event)
    s3 = s3_client()
    baseline = load_baseline(s3, config.bucket, config.baseline_key)
    run_minute = datetime.now(UTC).replace(second=0, microsecond=0)
    window_end = run_minute - timedelta(minutes=CAPTURE_SETTLE_MINUTES)
    window_start = window_end - timedelta(minutes=config.window_minutes)
    keys = capture_keys(s3, config.bucket, config.capture_prefix, window_start, window_end)
    batch = read_capture(s3, config.bucket, keys)
    batch.records = in_window(batch.records, window_start, window_end)
    report = analyse(batch, baseline, config.settings, window_start, window_end)

    stem = f"{config.report_prefix}{window_end:%Y/%m/%d/%H%M}"
    report["report_key"] = f"{stem}-report.json"
    report["plots"] = {}
    for name, body in render_plots(report, batch.records, baseline).items():
        key = f"{stem}-{name}"
        s3.put_object(Bucket=config.bucket, Key=key, Body=body, ContentType="image/png")
        report["plots"]["confidence_histogram" if name == CONFIDENCE_PLOT else "timeline"] = key
    s3.put_object(
        Bucket=config.bucket,
        Key=report["report_key"],
        Body=json.dumps(report, indent=2).encode("utf-8"),
        ContentType="application/json",
    )
    publish_metrics(report)
    logger.info(verdict_line(report), extra={"report_key": report["report_key"]})
    return report
