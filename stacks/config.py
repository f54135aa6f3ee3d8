"""Typed, validated settings read once from the CDK context (cdk.json, then `-c key=value`)."""

from __future__ import annotations

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
    data_capture_sampling_percentage: int
    incoming_expiration_days: int
    capture_expiration_days: int
    log_retention_days: int
    workflow_timeout_minutes: int

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
            autoscaling_max_capacity=_number(
                "autoscaling_max_capacity",
                required("autoscaling_max_capacity"),
                1,
                100,
                integer=True,
            ),
            autoscaling_invocations_per_instance=_number(
                "autoscaling_invocations_per_instance",
                required("autoscaling_invocations_per_instance"),
                1,
                1_000_000,
                integer=True,
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
