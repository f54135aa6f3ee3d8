"""Compare the endpoint's recent data capture with the baseline; report drift.

Run on a schedule (EventBridge Scheduler). The event's content is ignored, except an optional
override of the window length: ``{"window_minutes": 30}``. Once per call it:

1. reads the baseline (``baseline_file``) and the capture records of the window
   (``capture_records``). The window is the ``WINDOW_MINUTES`` minutes ending
   ``CAPTURE_SETTLE_MINUTES`` (5) before the current minute: the endpoint buffers capture for a
   few minutes before writing it to S3, and with a window as long as the schedule's rate
   consecutive windows still tile;
2. compares them by the drift test (``drift_report``, ``ks_test``), writes the report JSON and
   two PNG plots (``drift_plots``), publishes the metrics, and returns the report.

The environment: ``drift_settings``; the errors it raises: ``drift_errors``.

Output: ``REPORT_PREFIX<yyyy>/<mm>/<dd>/<hhmm>-report.json`` (the report, with ``report_key``
and ``plots``: ``{"confidence_histogram": "...-confidence.png", "timeline":
"...-timeline.png"}``), named after the window's end (UTC).

Metrics (CloudWatch EMF, namespace ``POWERTOOLS_METRICS_NAMESPACE``, no dimensions: no
``service`` dimension either, the alarms match none). Always: ``CapturedRecords`` (Count).
Only when ``status`` is ``ok``: ``DriftDetected`` (Count, 1 or 0), ``DriftScore`` (None, the
largest D, 0-1), ``LowConfidenceRate`` (None, a fraction 0-1), ``BicycleShare`` (None, a
fraction 0-1: the share of the first of CLASS_NAMES, bicycle), ``MeanBrightness`` (None,
0-255).
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from baseline_file import load_baseline
from capture_records import capture_keys, in_window, read_capture
from drift_plots import CONFIDENCE_PLOT, TIMELINE_PLOT, render_plots
from drift_report import analyse, verdict_line
from drift_settings import MonitorSettings

CAPTURE_SETTLE_MINUTES = 5
PLOT_NAMES = {CONFIDENCE_PLOT: "confidence_histogram", TIMELINE_PLOT: "timeline"}

logger = Logger()
tracer = Tracer()
metrics = Metrics(service="")  # no service dimension: the alarms match metrics without any


@functools.cache
def s3_client() -> Any:
    return boto3.client("s3")


def publish_metrics(report: dict[str, Any]) -> None:
    metrics.add_metric(name="CapturedRecords", unit=MetricUnit.Count, value=report["records"])
    if report["status"] != "ok":
        return
    metrics.add_metric(name="DriftDetected", unit=MetricUnit.Count, value=int(report["drift"]))
    metrics.add_metric(name="DriftScore", unit=MetricUnit.NoUnit, value=report["score"])
    metrics.add_metric(
        name="LowConfidenceRate", unit=MetricUnit.NoUnit, value=report["low_confidence_rate"]
    )
    first_class = report["class_names"][0]
    metrics.add_metric(
        name="BicycleShare", unit=MetricUnit.NoUnit, value=report["class_mix"][first_class]
    )
    if report["mean_brightness"] is not None:
        metrics.add_metric(
            name="MeanBrightness", unit=MetricUnit.NoUnit, value=report["mean_brightness"]
        )


def store_report(
    s3: Any, bucket: str, stem: str, report: dict[str, Any], plots: dict[str, bytes]
) -> None:
    """The plots as ``<stem>-<name>``, then the report that names them as ``<stem>-report.json``."""
    report["report_key"] = f"{stem}-report.json"
    report["plots"] = {}
    for name, body in plots.items():
        key = f"{stem}-{name}"
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/png")
        report["plots"][PLOT_NAMES[name]] = key
    s3.put_object(
        Bucket=bucket,
        Key=report["report_key"],
        Body=json.dumps(report, indent=2).encode("utf-8"),
        ContentType="application/json",
    )


@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)  # the report, with skipped lines
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = MonitorSettings.from_environment(event)
    s3 = s3_client()
    baseline = load_baseline(s3, settings.bucket, settings.baseline_key)
    run_minute = datetime.now(UTC).replace(second=0, microsecond=0)
    window_end = run_minute - timedelta(minutes=CAPTURE_SETTLE_MINUTES)
    window_start = window_end - timedelta(minutes=settings.window_minutes)
    keys = capture_keys(s3, settings.bucket, settings.capture_prefix, window_start, window_end)
    batch = read_capture(s3, settings.bucket, keys, settings.class_names)
    batch.records = in_window(batch.records, window_start, window_end)
    report = analyse(batch, baseline, settings.analysis, window_start, window_end)

    plots = render_plots(report, batch.records, baseline)
    stem = f"{settings.report_prefix}{window_end:%Y/%m/%d/%H%M}"
    store_report(s3, settings.bucket, stem, report, plots)
    publish_metrics(report)
    logger.info(verdict_line(report), extra={"report_key": report["report_key"]})
    return report
