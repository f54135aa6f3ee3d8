"""The alarms on the services: the endpoint's errors and latency, each function's errors and
throttles (the drift monitor's included). See ``alarms.py`` for the common ground."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_

from stacks.constructs.alarms import (
    GREATER,
    RATE_PERIOD,
    AlarmLimits,
    AlarmSet,
    guarded_rate,
)
from stacks.constructs.classifier_endpoint import endpoint_metric
from stacks.constructs.drift_monitor import DriftMonitor
from stacks.constructs.python_lambda import PythonLambda

SHORT_PERIOD = Duration.minutes(5)


def service_alarms(
    alarms: AlarmSet,
    *,
    endpoint_name: str,
    functions: Mapping[str, PythonLambda],
    drift_monitor: DriftMonitor,
    limits: AlarmLimits,
) -> None:
    """The endpoint's 5XX, 4XX and p99 latency; errors and throttles of ``functions`` by name,
    then of the drift monitor."""
    for code in ("5XX", "4XX"):
        alarms.add(
            f"Endpoint{code}Errors",
            f"The endpoint answers {code} errors (5 or more in 5 minutes, twice in 15 minutes)",
            endpoint_metric(
                endpoint_name,
                f"Invocation{code}Errors",
                statistic=cloudwatch.Stats.SUM,
                period=SHORT_PERIOD,
            ),
            threshold=5,
            evaluation_periods=3,
            datapoints_to_alarm=2,
        )
    alarms.add(
        "EndpointLatencyP99",
        f"Model latency p99 above {limits.endpoint_latency_p99_ms} ms for 15 minutes",
        endpoint_metric(
            endpoint_name, "ModelLatency", statistic=cloudwatch.Stats.p(99), period=SHORT_PERIOD
        ),
        threshold=limits.endpoint_latency_p99_ms * 1000,  # ModelLatency is in microseconds
        comparison_operator=GREATER,
        evaluation_periods=3,
    )
    for name, python_lambda in functions.items():
        function = python_lambda.function
        calls = {
            "errors": function.metric_errors(period=RATE_PERIOD),
            "calls": function.metric_invocations(period=RATE_PERIOD),
        }
        # Typed handler errors (a bad upload, a low-confidence image) are expected outcomes;
        # a high share of them is not.
        alarms.add(
            f"{name}Errors",
            f"More than {limits.workflow_failure_rate_limit:.0%} of the {name} invocations "
            "raised an error",
            guarded_rate("errors / calls", "calls", calls, "errors / invocations"),
            threshold=limits.workflow_failure_rate_limit,
            comparison_operator=GREATER,
        )
        _throttles(alarms, name, function)
    monitor = drift_monitor.function.function
    # One run per schedule period: any failed run matters.
    errors = monitor.metric_errors(period=drift_monitor.period)
    alarms.add("DriftMonitorErrors", "The drift monitor failed", errors, threshold=1)
    _throttles(alarms, "DriftMonitor", monitor)


def _throttles(alarms: AlarmSet, name: str, function: lambda_.IFunction) -> None:
    alarms.add(
        f"{name}Throttles",
        f"Lambda throttled {name} (concurrency limit reached)",
        function.metric_throttles(period=SHORT_PERIOD),
        threshold=1,
    )
