"""The drift monitor's settings: how a window is judged, and the environment it runs with.

``DriftSettings`` is the analysis' part (the local mode and the benchmarks build one too);
``MonitorSettings.from_environment`` reads the Lambda's environment at call time:

    BUCKET_NAME            bucket of the capture, the baseline and the reports (required)
    CAPTURE_PREFIX         capture folder of one endpoint, e.g. ``data-capture/<endpoint>/``
                           (required)
    BASELINE_KEY           key of the baseline file, e.g. ``monitoring/baseline.json``
                           (required)
    REPORT_PREFIX          where reports go, e.g. ``monitoring/reports/`` (required)
    WINDOW_MINUTES         window length in minutes, 1-10080 (default 60); the event's
                           ``window_minutes`` (an integer in the same range) overrides it
    DRIFT_THRESHOLD        KS statistic D above which a feature may drift, (0, 1)
                           (default 0.2)
    CONFIDENCE_THRESHOLD   the workflow's threshold, (0, 1], for the low-confidence rate
                           (default: the baseline's ``confidence_threshold``)
    MIN_RECORDS            fewest records for a verdict, >= 1 (default 30)
    CLASS_NAMES            the model's classes, comma-separated, in the order of the
                           endpoint's output, e.g. ``bicycle,motorcycle`` (required)

A value missing or out of range raises ``ConfigurationError`` naming the variable.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from drift_errors import ConfigurationError

SIGNIFICANCE_LEVEL = 0.01
DEFAULT_DRIFT_THRESHOLD = 0.2
DEFAULT_MIN_RECORDS = 30
DEFAULT_WINDOW_MINUTES = 60
LONGEST_WINDOW_MINUTES = 7 * 24 * 60


@dataclass(frozen=True)
class DriftSettings:
    """The KS statistic limit, the low-confidence threshold (None: the baseline's), the fewest
    records for a verdict and the significance level of the drift test."""

    drift_threshold: float = DEFAULT_DRIFT_THRESHOLD
    confidence_threshold: float | None = None
    min_records: int = DEFAULT_MIN_RECORDS
    significance: float = SIGNIFICANCE_LEVEL


@dataclass(frozen=True)
class MonitorSettings:
    """Where the capture, the baseline and the reports are, the window, the model's classes
    and the analysis'."""

    bucket: str
    capture_prefix: str
    baseline_key: str
    report_prefix: str
    window_minutes: int
    class_names: tuple[str, ...]
    analysis: DriftSettings

    @classmethod
    def from_environment(cls, event: Any) -> MonitorSettings:
        """The environment (and the event's optional ``window_minutes``), validated."""
        window = int(
            _number(
                "WINDOW_MINUTES", DEFAULT_WINDOW_MINUTES, 1, LONGEST_WINDOW_MINUTES, integer=True
            )
        )
        if isinstance(event, dict) and "window_minutes" in event:
            window = _window_override(event["window_minutes"])
        drift_threshold = _number("DRIFT_THRESHOLD", DEFAULT_DRIFT_THRESHOLD, 0.0, 1.0)
        if not 0.0 < drift_threshold < 1.0:
            raise ConfigurationError(f"DRIFT_THRESHOLD={drift_threshold} is not in (0, 1)")
        confidence: float | None = None
        if os.environ.get("CONFIDENCE_THRESHOLD", "").strip():
            confidence = _number("CONFIDENCE_THRESHOLD", math.nan, 0.0, 1.0)
            if confidence == 0.0:
                raise ConfigurationError("CONFIDENCE_THRESHOLD=0 is not in (0, 1]")
        return cls(
            bucket=_required("BUCKET_NAME"),
            capture_prefix=_folder(_required("CAPTURE_PREFIX")),
            baseline_key=_required("BASELINE_KEY"),
            report_prefix=_folder(_required("REPORT_PREFIX")),
            window_minutes=window,
            class_names=class_names(_required("CLASS_NAMES")),
            analysis=DriftSettings(
                drift_threshold=drift_threshold,
                confidence_threshold=confidence,
                min_records=int(
                    _number("MIN_RECORDS", DEFAULT_MIN_RECORDS, 1, 10**9, integer=True)
                ),
            ),
        )


def class_names(listed: str, source: str = "CLASS_NAMES") -> tuple[str, ...]:
    """The class names ``listed`` comma-separated; ConfigurationError naming ``source`` unless
    they are two or more distinct names."""
    names = tuple(name.strip() for name in listed.split(","))
    if len(names) < 2 or "" in names or len(set(names)) < len(names):
        raise ConfigurationError(f"{source}={listed!r} is not two or more distinct class names")
    return names


def _window_override(value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= LONGEST_WINDOW_MINUTES
    ):
        raise ConfigurationError(
            f"event window_minutes {value!r} is not an integer in [1, {LONGEST_WINDOW_MINUTES}]"
        )
    return value


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
