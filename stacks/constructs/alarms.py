"""The monitoring alarms' common ground, and the alarms on what the classifier sees.

``AlarmSet`` collects the alarms in the order they are made (the dashboard lists them so);
``traffic_alarms`` adds the drift monitor's verdict and silence and the workflow's
low-confidence and failure rates; ``service_alarms.py`` the endpoint's and the functions'. The
alarms go to the scope given (the stack), under the logical IDs first deployed (see
``stacks/monitoring_stack.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.constructs.drift_monitor import DriftMonitor
from stacks.constructs.python_lambda import PythonLambda

# Rates (low confidence, failed executions, function errors) need this many events in a
# period before they can alarm: one odd image in a quiet quarter-hour is not an incident.
MIN_EVENTS_FOR_A_RATE = 10
RATE_PERIOD = Duration.minutes(15)
GREATER = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
DEFAULTS = {
    "comparison_operator": cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    "evaluation_periods": 1,
    "treat_missing_data": cloudwatch.TreatMissingData.NOT_BREACHING,
}


@dataclass(frozen=True)
class AlarmLimits:
    """Where the alarms fire (the dashboard draws them too), and the workflow's threshold
    (``Settings`` fields, same names)."""

    confidence_threshold: float
    low_confidence_rate_limit: float
    workflow_failure_rate_limit: float
    endpoint_latency_p99_ms: int


def guarded_rate(
    ratio: str, events: str, metrics: Mapping[str, cloudwatch.IMetric], label: str
) -> cloudwatch.MathExpression:
    """``ratio`` of ``metrics``, or 0 while ``events`` counts too few events for a rate."""
    return cloudwatch.MathExpression(
        expression=f"IF({events} >= {MIN_EVENTS_FOR_A_RATE}, {ratio}, 0)",
        using_metrics=dict(metrics),
        label=label,
        period=RATE_PERIOD,
    )


class AlarmSet:
    """The alarms made in ``scope``, by construct ID (``alarms``)."""

    def __init__(self, scope: Construct) -> None:
        self._scope = scope
        self.alarms: dict[str, cloudwatch.Alarm] = {}

    def add(
        self, construct_id: str, description: str, metric: cloudwatch.IMetric, **props: Any
    ) -> None:
        """An alarm: ``props`` as ``cloudwatch.Alarm`` takes them, over ``DEFAULTS``."""
        self.alarms[construct_id] = cloudwatch.Alarm(
            self._scope,
            construct_id,
            alarm_description=description,
            metric=metric,
            **{**DEFAULTS, **props},
        )


def traffic_alarms(
    alarms: AlarmSet,
    *,
    drift_monitor: DriftMonitor,
    filter_inferences: PythonLambda,
    state_machine: sfn.IStateMachine,
    limits: AlarmLimits,
) -> None:
    """Drift, the drift monitor's silence, the low-confidence and workflow failure rates."""
    alarms.add(
        "DriftDetected",
        "The drift monitor found the recent capture unlike the baseline "
        "(see the report under monitoring/reports/)",
        drift_monitor.metric("DriftDetected", cloudwatch.Stats.MAXIMUM),
        threshold=1,
        # No traffic, no verdict: the monitor publishes DriftDetected only with enough
        # records, and silence is not drift.
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarms.add(
        "DriftMonitorSilent",
        "The drift monitor has not reported for two scheduled runs "
        "(schedule disabled, invocation refused or the function failing)",
        drift_monitor.metric("CapturedRecords", cloudwatch.Stats.SAMPLE_COUNT),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluation_periods=2,
        # The monitor reports CapturedRecords on every run, traffic or not: a missing
        # value means it did not run.
        treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
    )
    low_confidence = {
        name: filter_inferences.powertools_metric(
            "LowConfidenceInferences", statistic=statistic, period=RATE_PERIOD
        )
        for name, statistic in (
            ("rate", cloudwatch.Stats.AVERAGE),
            ("calls", cloudwatch.Stats.SAMPLE_COUNT),
        )
    }
    alarms.add(
        "LowConfidenceRate",
        f"More than {limits.low_confidence_rate_limit:.0%} of the inferences are below the "
        f"confidence threshold ({limits.confidence_threshold})",
        guarded_rate("rate", "calls", low_confidence, "low-confidence rate"),
        threshold=limits.low_confidence_rate_limit,
        comparison_operator=GREATER,
        evaluation_periods=2,
    )
    executions = {
        "failed": state_machine.metric_failed(period=RATE_PERIOD),
        "started": state_machine.metric_started(period=RATE_PERIOD),
    }
    alarms.add(
        "WorkflowFailureRate",
        f"More than {limits.workflow_failure_rate_limit:.0%} of the workflow executions failed "
        "(every failure kind, low confidence included)",
        guarded_rate("failed / started", "started", executions, "failed executions / started"),
        threshold=limits.workflow_failure_rate_limit,
        comparison_operator=GREATER,
        evaluation_periods=2,
    )
