"""The monitoring dashboard: the workflow, the endpoint and the drift monitor, three rows of three
(in the scope given, the stack, under the logical ID first deployed: ``monitoring_stack.py``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.constructs.alarms import AlarmLimits
from stacks.constructs.classification_steps import ClassificationFunctions
from stacks.constructs.classifier_endpoint import endpoint_metric
from stacks.constructs.drift_monitor import DriftMonitor
from stacks.constructs.widgets import (
    AVERAGE,
    MAXIMUM,
    PERIOD,
    SHARE_AXIS,
    SUM,
    emitted,
    expression,
    graph,
    line,
)

REJECTIONS = "InvalidInput/ImageNotFound/InvalidImage/ImageTooLarge"
WORKFLOW_RATE = "workflow (FilterInferences)"
ENDPOINT_FAILURES = "endpoint failures (each attempt)"


class MonitoringDashboard:
    """One CloudWatch dashboard (``dashboard``) over the last 24 hours."""

    def __init__(
        self,
        scope: Construct,
        *,
        endpoint_name: str,
        state_machine: sfn.IStateMachine,
        lambdas: ClassificationFunctions,
        drift_monitor: DriftMonitor,
        alarms: Sequence[cloudwatch.IAlarm],
        limits: AlarmLimits,
        autoscaling_target: int,
    ) -> None:
        self._sagemaker = functools.partial(endpoint_metric, endpoint_name, period=PERIOD)
        machine, drift = state_machine, drift_monitor.metric
        filter_ = lambdas.filter
        workflow = [
            graph(
                "Workflow executions",
                [
                    machine.metric_started(period=PERIOD, label="started"),
                    machine.metric_succeeded(period=PERIOD, label="classified"),
                    machine.metric_failed(period=PERIOD, label="failed"),
                    machine.metric_timed_out(period=PERIOD, label="timed out"),
                ],
            ),
            graph(
                "Failures by kind",
                [
                    emitted(filter_, "LowConfidenceInferences", SUM, "LowConfidence"),
                    emitted(lambdas.serialize, "ImagesRejected", SUM, REJECTIONS),
                    emitted(lambdas.classify, "EndpointFailures", SUM, ENDPOINT_FAILURES),
                    machine.metric_timed_out(period=PERIOD, label="timed out"),
                ],
                stacked=True,
            ),
            graph(
                "Low-confidence rate",
                [
                    emitted(filter_, "LowConfidenceInferences", AVERAGE, WORKFLOW_RATE),
                    drift("LowConfidenceRate", AVERAGE, "captured (drift monitor)"),
                ],
                left_annotations=line(limits.low_confidence_rate_limit, "alarm limit"),
                left_y_axis=SHARE_AXIS,
            ),
        ]
        drift_row = [
            graph(
                "Drift (KS statistic of the window against the baseline)",
                [drift("DriftScore", MAXIMUM, "drift score")],
                left_annotations=line(drift_monitor.settings.drift_threshold, "threshold"),
                right=[drift("DriftDetected", MAXIMUM, "drift")],
                left_y_axis=SHARE_AXIS,
            ),
            graph(
                "Captured traffic",
                [drift("BicycleShare", AVERAGE, "bicycle share")],
                right=[
                    drift("MeanBrightness", AVERAGE, "brightness"),
                    drift("CapturedRecords", SUM, "records"),
                ],
                left_y_axis=SHARE_AXIS,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=8, height=6),
        ]
        self.dashboard = cloudwatch.Dashboard(
            scope,
            "Dashboard",
            default_interval=Duration.hours(24),
            widgets=[workflow, self._endpoint_row(limits, autoscaling_target), drift_row],
        )

    def _latency_ms(self, stat: str) -> cloudwatch.MathExpression:
        latency = self._sagemaker("ModelLatency", statistic=stat, label=stat)  # in microseconds
        return expression(f"{stat} / 1000", {stat: latency}, stat)

    def _endpoint_row(self, limits: AlarmLimits, target: int) -> list[cloudwatch.IWidget]:
        per_instance = self._sagemaker(
            "InvocationsPerInstance", statistic=SUM, label="per instance"
        )
        # SageMaker publishes no instance count for a real-time variant; invocations over
        # invocations per instance is the number of instances that served traffic.
        calls = self._sagemaker("Invocations", statistic=SUM, label="calls")
        instances = expression(
            "invocations / per_instance",
            {"invocations": calls, "per_instance": per_instance},
            "instances serving",
        )
        load = expression(
            f"per_instance / {PERIOD.to_minutes()}",
            {"per_instance": per_instance},
            "invocations per instance per minute",
        )
        return [
            graph(
                "Endpoint invocations",
                [
                    self._sagemaker("Invocations", statistic=SUM, label="invocations"),
                    self._sagemaker("Invocation4XXErrors", statistic=SUM, label="4XX"),
                    self._sagemaker("Invocation5XXErrors", statistic=SUM, label="5XX"),
                ],
            ),
            graph(
                "Endpoint model latency (ms)",
                [self._latency_ms(stat) for stat in ("p50", "p99")],
                left_annotations=line(limits.endpoint_latency_p99_ms, "p99 alarm"),
            ),
            graph(
                "Endpoint instances and load per instance",
                [instances],
                right=[load],
                right_annotations=line(target, "autoscaling target"),
            ),
        ]
