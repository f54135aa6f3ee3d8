"""The drift monitor: its function, the schedule that runs it, its grants, the baseline upload.

The resources go to the scope given (the stack), as ``classification_chain``'s states do, and
keep the logical IDs they were first deployed with (see ``stacks/monitoring_stack.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from constructs import Construct

from stacks.checkov import skip_checks
from stacks.constructs.drift_baseline import upload_baseline
from stacks.constructs.python_lambda import PythonLambda
from stacks.names import (
    CAPTURE_PREFIX,
    CLASS_NAMES_VARIABLE,
    DRIFT_BASELINE_FILE,
    DRIFT_BASELINE_KEY,
    DRIFT_REPORTS_PREFIX,
    METRICS_NAMESPACE,
)

SOURCE_DIR = Path(__file__).resolve().parents[2] / "lambda_src" / "drift_monitor"


@dataclass(frozen=True)
class DriftMonitorSettings:
    """How often the monitor runs and how it judges a window (``Settings`` fields, same names)."""

    drift_monitor_rate_minutes: int
    drift_window_minutes: int
    drift_threshold: float
    confidence_threshold: float
    drift_min_records: int


class DriftMonitor:
    """The drift monitor Lambda on a schedule over ``endpoint_name``'s capture in ``bucket``,
    whose answers are probabilities of ``class_names``."""

    def __init__(
        self,
        scope: Construct,
        *,
        bucket: s3.IBucket,
        encryption_key: kms.IKey,
        endpoint_name: str,
        class_names: Sequence[str],
        model_record: Path,
        log_retention: logs.RetentionDays,
        settings: DriftMonitorSettings,
    ) -> None:
        self.settings = settings
        self.period = Duration.minutes(settings.drift_monitor_rate_minutes)
        capture_prefix = f"{CAPTURE_PREFIX}{endpoint_name}/"
        self.function = PythonLambda(
            scope,
            "DriftMonitorFunction",
            source_dir=SOURCE_DIR,
            service_name="drift_monitor",
            metrics_namespace=METRICS_NAMESPACE,
            log_retention=log_retention,
            log_encryption_key=encryption_key,
            # Reads up to a window of capture and draws two matplotlib plots.
            memory_size=1024,
            timeout_seconds=300,
            environment={
                "BUCKET_NAME": bucket.bucket_name,
                "CAPTURE_PREFIX": capture_prefix,
                "BASELINE_KEY": DRIFT_BASELINE_KEY,
                "REPORT_PREFIX": DRIFT_REPORTS_PREFIX,
                "WINDOW_MINUTES": str(settings.drift_window_minutes),
                "DRIFT_THRESHOLD": str(settings.drift_threshold),
                "CONFIDENCE_THRESHOLD": str(settings.confidence_threshold),
                "MIN_RECORDS": str(settings.drift_min_records),
                CLASS_NAMES_VARIABLE: ",".join(class_names),
            },
        )
        bucket.grant_read(self.function.function, f"{capture_prefix}*")
        bucket.grant_read(self.function.function, DRIFT_BASELINE_KEY)
        bucket.grant_put(self.function.function, f"{DRIFT_REPORTS_PREFIX}*")
        skip_checks(
            self.function.function,
            {
                "CKV_AWS_116": "Its only event is the schedule's empty input: the next run "
                "reads the same window, and a failed run alarms (DriftMonitorErrors).",
                "CKV_AWS_115": "One run per schedule period, so there is no burst to bound; "
                "a reservation would only take from the account's unreserved pool.",
            },
        )
        self.schedule = scheduler.Schedule(
            scope,
            "DriftMonitorSchedule",
            description="Runs the drift monitor over the endpoint's recent data capture",
            schedule=scheduler.ScheduleExpression.rate(self.period),
            target=scheduler_targets.LambdaInvoke(
                self.function.function,
                input=scheduler.ScheduleTargetInput.from_object({}),
                retry_attempts=2,
                max_event_age=self.period,
            ),
        )
        upload_baseline(
            scope,
            baseline=model_record.with_name(DRIFT_BASELINE_FILE),
            bucket=bucket,
            encryption_key=encryption_key,
            log_retention=log_retention,
        )

    def metric(
        self, metric_name: str, statistic: str, label: str | None = None
    ) -> cloudwatch.Metric:
        """A figure the monitor publishes once per run, without dimensions."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=metric_name,
            statistic=statistic,
            period=self.period,
            label=label,
        )
