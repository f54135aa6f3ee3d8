"""Typed, validated settings read once from the CDK context (cdk.json, then `-c key=value`)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import aws_logs as logs

# The retention periods CloudWatch Logs accepts, in days, and their CDK names.
LOG_RETENTION = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}
INSTANCE_TYPE_PATTERN = re.compile(
    r"^ml\.[a-z][a-z0-9-]*\.(nano|micro|small|medium|large|\d*xlarge)$"
)
PROJECT_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# SageMaker blue/green traffic shifting modes (TrafficRoutingConfig.Type).
TRAFFIC_ROUTING_TYPES = ("CANARY", "LINEAR", "ALL_AT_ONCE")
# The autoscaling target is the measured saturation rate x this factor x 60 (README, Scale).
AUTOSCALING_SAFETY_FACTOR = 0.5
# Seconds one classify call holds its Lambda: the endpoint's measured p99 of 54 ms, rounded up
# for the network hop and the serving container's front end.
CLASSIFY_CALL_SECONDS = 0.1
# How long autoscaling takes to grow the endpoint from one instance to four by target tracking
# (docs/scale.md): its high alarm wants 3 one-minute datapoints above the target, then a new
# instance starts (5 minutes assumed for ml.c5.large); each step at most doubles the fleet
# (the metric is capped at the saturation rate, twice the target), with a 1-minute scale-out
# cooldown between steps: (3 + 5) + (1 + 5) = 14 minutes, rounded up.
CAPACITY_RETRY_MINUTES = 15
# The capacity retrier's backoff: first wait up to 2 s, doubling, each wait at most 60 s.
CAPACITY_RETRY_INTERVAL_SECONDS = 2
CAPACITY_RETRY_MAX_DELAY_SECONDS = 60


class ConfigError(ValueError):
    """A context value is missing or outside its allowed range."""


def _number(
    key: str, raw: Any, low: float, high: float, *, low_open: bool = False, integer: bool = False
) -> float | int:
    kind = "an integer" if integer else "a number"
    bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]"
    try:
        value = int(str(raw)) if integer else float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"context {key}={raw!r} is not {kind}; allowed: {bounds}") from None
    below = value <= low if low_open else value < low
    if below or value > high:
        raise ConfigError(f"context {key}={raw!r} is out of range; allowed: {bounds}")
    return value


def _matching(key: str, raw: Any, pattern: re.Pattern[str], example: str) -> str:
    value = str(raw)
    if not pattern.match(value):
        raise ConfigError(
            f"context {key}={raw!r} has an unknown format; allowed: {pattern.pattern} "
            f"(for example {example})"
        )
    return value


def _one_of(key: str, raw: Any, allowed: tuple[str, ...]) -> str:
    value = str(raw)
    if value not in allowed:
        raise ConfigError(f"context {key}={raw!r} is not allowed; allowed: {', '.join(allowed)}")
    return value


def _flag(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if str(raw).lower() in ("true", "false"):
        return str(raw).lower() == "true"
    raise ConfigError(f"context {key}={raw!r} is not a flag; allowed: true, false")


def classify_concurrency_for(max_capacity: int, invocations_per_instance: int) -> int:
    """Classify calls in flight that keep ``max_capacity`` instances at their saturation rate
    (Little's law: rate x seconds per call), and no more: a burst queues in Step Functions
    instead of storming the endpoint."""
    saturation_per_second = invocations_per_instance / 60 / AUTOSCALING_SAFETY_FACTOR
    return math.ceil(max_capacity * saturation_per_second * CLASSIFY_CALL_SECONDS)


def capacity_retry_attempts(minutes: int) -> int:
    """Retries whose mean total wait under full jitter (each wait uniform in [0, its backoff])
    reaches ``minutes``: half of 2, 4, 8, ... seconds, capped at 60."""
    attempts, waited, backoff = 0, 0.0, float(CAPACITY_RETRY_INTERVAL_SECONDS)
    while waited < minutes * 60:
        waited += min(backoff, CAPACITY_RETRY_MAX_DELAY_SECONDS) / 2
        backoff *= 2
        attempts += 1
    return attempts


def _optional_email(key: str, raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    return _matching(key, raw, EMAIL_PATTERN, "ops@example.com")


@dataclass(frozen=True)
class Settings:
    """Everything the stacks may be configured with; see the table in README.md."""

    project_name: str
    model_record: Path
    confidence_threshold: float
    endpoint_instance_type: str
    endpoint_instance_count: int
    autoscaling_min_capacity: int
    autoscaling_max_capacity: int
    autoscaling_invocations_per_instance: int
    classify_reserved_concurrency: int
    capacity_retry_minutes: int
    data_capture_sampling_percentage: int
    incoming_expiration_days: int
    capture_expiration_days: int
    log_retention_days: int
    workflow_timeout_minutes: int
    alarm_email: str | None
    low_confidence_rate_limit: float
    workflow_failure_rate_limit: float
    endpoint_latency_p99_ms: int
    drift_monitor_rate_minutes: int
    drift_window_minutes: int
    drift_threshold: float
    drift_min_records: int
    batch_mode: bool
    batch_max_concurrency: int
    batch_tolerated_failure_percentage: int
    rollout_traffic_routing: str
    rollout_step_percentage: int
    rollout_bake_minutes: int

    @property
    def log_retention(self) -> logs.RetentionDays:
        return logs.RetentionDays[LOG_RETENTION[self.log_retention_days]]

    @property
    def ssm_prefix(self) -> str:
        """Where the stacks publish names that tools (training/train.py) look up."""
        return f"/{self.project_name}"

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> Settings:
        """Build the settings from a context getter such as `app.node.try_get_context`."""

        def required(key: str) -> Any:
            value = get(key)
            if value is None or value == "":
                raise ConfigError(
                    f"context {key} is not set; set it in cdk.json or with -c {key}=..."
                )
            return value

        max_capacity = _number(
            "autoscaling_max_capacity", required("autoscaling_max_capacity"), 1, 100, integer=True
        )
        invocations_per_instance = _number(
            "autoscaling_invocations_per_instance",
            required("autoscaling_invocations_per_instance"),
            1,
            1_000_000,
            integer=True,
        )
        classify_concurrency = get("classify_reserved_concurrency")
        retry_minutes = get("capacity_retry_minutes")
        settings = cls(
            project_name=_matching(
                "project_name", required("project_name"), PROJECT_NAME_PATTERN, "scones-unlimited"
            ),
            model_record=Path(str(required("model_record"))),
            confidence_threshold=_number(
                "confidence_threshold", required("confidence_threshold"), 0, 1, low_open=True
            ),
            endpoint_instance_type=_matching(
                "endpoint_instance_type",
                required("endpoint_instance_type"),
                INSTANCE_TYPE_PATTERN,
                "ml.m5.large",
            ),
            endpoint_instance_count=_number(
                "endpoint_instance_count", required("endpoint_instance_count"), 1, 100, integer=True
            ),
            autoscaling_min_capacity=_number(
                "autoscaling_min_capacity",
                required("autoscaling_min_capacity"),
                1,
                100,
                integer=True,
            ),
            autoscaling_max_capacity=max_capacity,
            autoscaling_invocations_per_instance=invocations_per_instance,
            classify_reserved_concurrency=(
                classify_concurrency_for(max_capacity, invocations_per_instance)
                if classify_concurrency in (None, "")
                else _number(
                    "classify_reserved_concurrency", classify_concurrency, 1, 1000, integer=True
                )
            ),
            capacity_retry_minutes=(
                CAPACITY_RETRY_MINUTES
                if retry_minutes in (None, "")
                else _number("capacity_retry_minutes", retry_minutes, 1, 50, integer=True)
            ),
            data_capture_sampling_percentage=_number(
                "data_capture_sampling_percentage",
                required("data_capture_sampling_percentage"),
                0,
                100,
                integer=True,
            ),
            incoming_expiration_days=_number(
                "incoming_expiration_days",
                required("incoming_expiration_days"),
                1,
                3650,
                integer=True,
            ),
            capture_expiration_days=_number(
                "capture_expiration_days",
                required("capture_expiration_days"),
                1,
                3650,
                integer=True,
            ),
            log_retention_days=_number(
                "log_retention_days", required("log_retention_days"), 1, 3653, integer=True
            ),
            workflow_timeout_minutes=_number(
                "workflow_timeout_minutes",
                required("workflow_timeout_minutes"),
                1,
                60,
                integer=True,
            ),
            alarm_email=_optional_email("alarm_email", get("alarm_email")),
            low_confidence_rate_limit=_number(
                "low_confidence_rate_limit",
                required("low_confidence_rate_limit"),
                0,
                1,
                low_open=True,
            ),
            workflow_failure_rate_limit=_number(
                "workflow_failure_rate_limit",
                required("workflow_failure_rate_limit"),
                0,
                1,
                low_open=True,
            ),
            endpoint_latency_p99_ms=_number(
                "endpoint_latency_p99_ms",
                required("endpoint_latency_p99_ms"),
                1,
                60_000,
                integer=True,
            ),
            drift_monitor_rate_minutes=_number(
                "drift_monitor_rate_minutes",
                required("drift_monitor_rate_minutes"),
                5,
                1440,
                integer=True,
            ),
            drift_window_minutes=_number(
                "drift_window_minutes",
                required("drift_window_minutes"),
                5,
                10_080,
                integer=True,
            ),
            drift_threshold=_number(
                "drift_threshold", required("drift_threshold"), 0, 0.99, low_open=True
            ),
            drift_min_records=_number(
                "drift_min_records", required("drift_min_records"), 1, 100_000, integer=True
            ),
            batch_mode=_flag("batch_mode", required("batch_mode")),
            batch_max_concurrency=_number(
                "batch_max_concurrency",
                required("batch_max_concurrency"),
                1,
                1000,
                integer=True,
            ),
            batch_tolerated_failure_percentage=_number(
                "batch_tolerated_failure_percentage",
                required("batch_tolerated_failure_percentage"),
                0,
                100,
                integer=True,
            ),
            rollout_traffic_routing=_one_of(
                "rollout_traffic_routing",
                required("rollout_traffic_routing"),
                TRAFFIC_ROUTING_TYPES,
            ),
            rollout_step_percentage=_number(
                "rollout_step_percentage",
                required("rollout_step_percentage"),
                10,
                50,
                integer=True,
            ),
            rollout_bake_minutes=_number(
                "rollout_bake_minutes", required("rollout_bake_minutes"), 1, 60, integer=True
            ),
        )
        settings._check_relations()
        return settings

    def _check_relations(self) -> None:
        if self.log_retention_days not in LOG_RETENTION:
            raise ConfigError(
                f"context log_retention_days={self.log_retention_days} is not a CloudWatch Logs "
                f"retention; allowed: {', '.join(map(str, LOG_RETENTION))}"
            )
        if self.autoscaling_min_capacity > self.autoscaling_max_capacity:
            raise ConfigError(
                f"context autoscaling_min_capacity={self.autoscaling_min_capacity} exceeds "
                f"autoscaling_max_capacity={self.autoscaling_max_capacity}; allowed: min <= max"
            )
        if not (
            self.autoscaling_min_capacity
            <= self.endpoint_instance_count
            <= self.autoscaling_max_capacity
        ):
            raise ConfigError(
                f"context endpoint_instance_count={self.endpoint_instance_count} is outside the "
                f"autoscaling range; allowed: [{self.autoscaling_min_capacity}, "
                f"{self.autoscaling_max_capacity}]"
            )
        if self.workflow_timeout_minutes <= self.capacity_retry_minutes:
            raise ConfigError(
                f"context workflow_timeout_minutes={self.workflow_timeout_minutes} does not "
                f"outlast capacity_retry_minutes={self.capacity_retry_minutes}, so a burst would "
                "time out while it waits for capacity; allowed: timeout > capacity retry"
            )
        if self.drift_window_minutes < self.drift_monitor_rate_minutes:
            raise ConfigError(
                f"context drift_window_minutes={self.drift_window_minutes} is shorter than "
                f"drift_monitor_rate_minutes={self.drift_monitor_rate_minutes}, so some capture "
                "would never be analysed; allowed: window >= rate"
            )
