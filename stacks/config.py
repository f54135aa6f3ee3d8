"""Typed, validated settings read once from the CDK context (cdk.json, then `-c key=value`).

Each key is declared once, as a field of `Settings` carrying its `Option`: how its value is
parsed and checked, and what it sets. `Settings.from_context` is built from those fields, and
so is the configuration table in README.md (`python -m stacks.config --markdown`, with the
defaults from cdk.json); `tests/stacks/test_config_table.py` keeps the two in step.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
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
# The autoscaling target is the measured saturation rate x this factor x 60
# (docs/operations.md, Scale).
AUTOSCALING_SAFETY_FACTOR = 0.5
# Seconds one classify call holds its Lambda: the endpoint's measured p99 of 170 ms on photos as
# the workflow sends them (the photo expert runs on them), rounded up for the network hop and
# the serving container's front end.
CLASSIFY_CALL_SECONDS = 0.25
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


@dataclass(frozen=True)
class Number:
    """A number in [low, high], or (low, high] when ``low_open``; an integer if ``integer``."""

    low: float
    high: float
    low_open: bool = False
    integer: bool = False

    @property
    def bounds(self) -> str:
        low, high = (f"{x:g}" if x % 1 else f"{int(x)}" for x in (self.low, self.high))
        return f"{'(' if self.low_open else '['}{low}, {high}]"

    @property
    def allowed(self) -> str:
        return f"{'an integer' if self.integer else 'a number'} in {self.bounds}"

    def __call__(self, key: str, raw: Any) -> float | int:
        try:
            value = int(str(raw)) if self.integer else float(raw)
        except (TypeError, ValueError):
            problem = f"is not {'an integer' if self.integer else 'a number'}"
        else:
            below = value <= self.low if self.low_open else value < self.low
            if not below and value <= self.high:
                return value
            problem = "is out of range"
        raise ConfigError(f"context {key}={raw!r} {problem}; allowed: {self.bounds}")


@dataclass(frozen=True)
class Matching:
    """A string matching ``pattern``; ``allowed`` says it in words for the table."""

    pattern: re.Pattern[str]
    example: str
    allowed: str

    def __call__(self, key: str, raw: Any) -> str:
        value = str(raw)
        if not self.pattern.match(value):
            raise ConfigError(
                f"context {key}={raw!r} has an unknown format; allowed: {self.pattern.pattern} "
                f"(for example {self.example})"
            )
        return value


@dataclass(frozen=True)
class Choice:
    """One of ``choices``: words, or integers (the CloudWatch Logs retentions)."""

    choices: tuple[str, ...] | tuple[int, ...]
    what: str = "allowed"

    @property
    def allowed(self) -> str:
        shown = [f"`{choice}`" for choice in self.choices]
        return ", ".join(shown if len(shown) < 9 else [*shown[:8], "...", shown[-1]])

    def __call__(self, key: str, raw: Any) -> str | int:
        try:
            value = type(self.choices[0])(str(raw))
        except ValueError:
            value = None
        if value not in self.choices:
            listing = ", ".join(map(str, self.choices))
            raise ConfigError(f"context {key}={raw!r} is not {self.what}; allowed: {listing}")
        return value


@dataclass(frozen=True)
class Flag:
    """`true` or `false`, as JSON or as a `-c` string in any case."""

    allowed = "`true`, `false`"

    def __call__(self, key: str, raw: Any) -> bool:
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "false"):
            return str(raw).lower() == "true"
        raise ConfigError(f"context {key}={raw!r} is not a flag; allowed: true, false")


@dataclass(frozen=True)
class FilePath:
    """A path; whether the file exists is the app's business (no record: storage only)."""

    allowed = "a path"

    def __call__(self, key: str, raw: Any) -> Path:
        return Path(str(raw))


Parser = Number | Choice | Matching | Flag | FilePath
Unset = Callable[[dict[str, Any]], Any] | None


@dataclass(frozen=True)
class Option:
    """How one context key is read: its parser, what it sets, its value when left empty."""

    parse: Parser
    sets: str
    when_unset: Unset = None


def option(parse: Parser, sets: str, when_unset: Unset = None) -> Any:
    """A `Settings` field read from the context key of its name. Left empty, it takes
    ``when_unset(values read before it)``, or is an error without ``when_unset``."""
    return field(metadata={"option": Option(parse, sets, when_unset)})


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


def integers(low: int, high: int) -> Number:
    return Number(low, high, integer=True)


SHARE = Number(0, 1, low_open=True)


@dataclass(frozen=True)
class Settings:
    """Everything the stacks may be configured with: one field per context key, read in order."""

    project_name: str = option(
        Matching(
            PROJECT_NAME_PATTERN,
            "scones-unlimited",
            "3-32 lower-case letters, digits or `-`; a letter first, no `-` last",
        ),
        "prefix of the SSM parameters and value of the `project` tag",
    )
    model_record: Path = option(
        FilePath(), "the record `training/train.py` writes; without it, `SconesStorage` only"
    )
    confidence_threshold: float = option(
        SHARE,
        "inferences below it fail with `LowConfidence`; chosen from the thresholds the "
        "evaluation recommended in measured runs (0.67 to 0.76); use your record's "
        "`evaluation.recommended_threshold`",
    )
    endpoint_instance_type: str = option(
        Matching(INSTANCE_TYPE_PATTERN, "ml.m5.large", "`ml.<family>.<size>`"),
        "the endpoint's SageMaker instance type",
    )
    endpoint_instance_count: int = option(
        integers(1, 100), "instances the endpoint starts with; within the autoscaling bounds"
    )
    autoscaling_min_capacity: int = option(
        integers(1, 100), "fewest instances autoscaling keeps (the idle cost); at most the max"
    )
    autoscaling_max_capacity: int = option(
        integers(1, 100), "most instances autoscaling scales out to"
    )
    autoscaling_invocations_per_instance: int = option(
        integers(1, 1_000_000),
        "target invocations per instance per minute ([scale](docs/operations.md#scale))",
    )
    classify_reserved_concurrency: int = option(
        integers(1, 1000),
        "classify calls in flight; derived as max capacity x saturation rate (twice the "
        "target: 10/s) x 0.25 s per call, so a burst waits in Step Functions instead of "
        "storming the endpoint",
        lambda read: classify_concurrency_for(
            read["autoscaling_max_capacity"], read["autoscaling_invocations_per_instance"]
        ),
    )
    capacity_retry_minutes: int = option(
        integers(1, 50),
        "mean total wait of classify's capacity retrier; derived as the time autoscaling "
        "takes from one instance to four ([docs/scale.md](docs/scale.md))",
        lambda read: CAPACITY_RETRY_MINUTES,
    )
    data_capture_sampling_percentage: int = option(
        integers(0, 100), "% of endpoint requests captured: the drift monitor's sample"
    )
    incoming_expiration_days: int = option(integers(1, 3650), "days uploads are kept (`incoming/`)")
    capture_expiration_days: int = option(
        integers(1, 3650), "days the capture, the drift reports and the access logs are kept"
    )
    log_retention_days: int = option(
        Choice(tuple(LOG_RETENTION), "a CloudWatch Logs retention"),
        "days the log groups the stacks create keep their events",
    )
    workflow_timeout_minutes: int = option(
        integers(1, 60), "a workflow execution's timeout; more than `capacity_retry_minutes`"
    )
    alarm_email: str | None = option(
        Matching(EMAIL_PATTERN, "ops@example.com", "an e-mail address"),
        "subscribed to the alarm topic (it must confirm)",
        lambda read: None,
    )
    low_confidence_rate_limit: float = option(
        SHARE, "share of low-confidence inferences that alarms"
    )
    workflow_failure_rate_limit: float = option(
        SHARE, "share of failed executions (and of each function's errored calls) that alarms"
    )
    endpoint_latency_p99_ms: int = option(
        integers(1, 60_000), "model latency p99 that alarms and rolls a rollout back"
    )
    drift_monitor_rate_minutes: int = option(integers(5, 1440), "how often the drift monitor runs")
    drift_window_minutes: int = option(
        integers(5, 10_080), "capture each run analyses; at least the rate"
    )
    drift_threshold: float = option(
        Number(0, 0.99, low_open=True), "Kolmogorov-Smirnov D above which a feature drifts"
    )
    drift_min_records: int = option(integers(1, 100_000), "fewest captured records for a verdict")
    batch_mode: bool = option(Flag(), "`false` leaves out the `SconesBatch` stack")
    batch_max_concurrency: int = option(integers(1, 1000), "images a batch classifies at once")
    batch_tolerated_failure_percentage: int = option(
        integers(0, 100), "% of failed images above which a batch stops"
    )
    rollout_traffic_routing: str = option(
        Choice(TRAFFIC_ROUTING_TYPES), "how a new model's blue/green rollout shifts traffic"
    )
    rollout_step_percentage: int = option(
        integers(10, 50), "canary size, or linear step, in % of the new fleet"
    )
    rollout_bake_minutes: int = option(
        integers(1, 60), "wait after each traffic step and before the old fleet goes"
    )

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
        values: dict[str, Any] = {}
        for key, declared in options().items():
            raw = get(key)
            if raw is not None and raw != "":
                values[key] = declared.parse(key, raw)
            elif declared.when_unset is not None:
                values[key] = declared.when_unset(values)
            else:
                raise ConfigError(
                    f"context {key} is not set; set it in cdk.json or with -c {key}=..."
                )
        settings = cls(**values)
        settings._check_relations()
        return settings

    def _check_relations(self) -> None:
        low, high = self.autoscaling_min_capacity, self.autoscaling_max_capacity
        if low > high:
            raise ConfigError(
                f"context autoscaling_min_capacity={low} exceeds "
                f"autoscaling_max_capacity={high}; allowed: min <= max"
            )
        if not low <= self.endpoint_instance_count <= high:
            raise ConfigError(
                f"context endpoint_instance_count={self.endpoint_instance_count} is outside the "
                f"autoscaling range; allowed: [{low}, {high}]"
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


def options() -> dict[str, Option]:
    """Every context key and how it is read, in reading order."""
    return {declared.name: declared.metadata["option"] for declared in fields(Settings)}


def markdown_table(context: dict[str, Any]) -> str:
    """README.md's configuration table, with the defaults from ``context`` (cdk.json's); an
    empty default shows what it stands for: the value derived from the others, or none."""
    resolved = Settings.from_context(context.get)
    rows = ["| key | default | allowed | sets |", "| --- | --- | --- | --- |"]
    for key, declared in options().items():
        raw = context[key]
        if raw == "":
            value = getattr(resolved, key)
            default = '`""` (none)' if value is None else f'`""`: derived, {value}'
        else:
            default = f"`{raw if isinstance(raw, str) else json.dumps(raw)}`"
        rows.append(f"| `{key}` | {default} | {declared.parse.allowed} | {declared.sets} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m stacks.config --markdown  (README.md's configuration table)")
    from stacks.application import cdk_json_context

    print(markdown_table(cdk_json_context()), end="")
