"""Monitoring: the drift monitor on a schedule, the alarms, their SNS topic and the dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as sns_subscriptions
from cdk_nag import NagSuppressions
from constructs import Construct

from stacks.checkov import skip_checks
from stacks.config import Settings
from stacks.constructs.classifier_endpoint import endpoint_metric
from stacks.constructs.drift_baseline import upload_baseline
from stacks.constructs.project_key import project_key
from stacks.constructs.python_lambda import PythonLambda
from stacks.endpoint_stack import EndpointStack
from stacks.names import (
    CAPTURE_PREFIX,
    DRIFT_BASELINE_FILE,
    DRIFT_BASELINE_KEY,
    DRIFT_REPORTS_PREFIX,
    METRICS_NAMESPACE,
)
from stacks.storage_stack import StorageStack
from stacks.workflow_stack import WorkflowStack

# Rates (low confidence, failed executions, function errors) need this many events in a
# period before they can alarm: one odd image in a quiet quarter-hour is not an incident.
MIN_EVENTS_FOR_A_RATE = 10
RATE_PERIOD = Duration.minutes(15)
ENDPOINT_PERIOD = Duration.minutes(5)
GREATER_OR_EQUAL = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
GREATER = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
NOT_BREACHING = cloudwatch.TreatMissingData.NOT_BREACHING
DRIFT_MONITOR_SOURCE = Path(__file__).resolve().parents[1] / "lambda_src" / "drift_monitor"


class MonitoringStack(Stack):
    """Drift monitor (EventBridge Scheduler -> Lambda), alarms -> SNS topic, one dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        storage: StorageStack,
        endpoint: EndpointStack,
        workflow: WorkflowStack,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        # A reference to the endpoint stack's output: this stack's own AWS::StackName differs.
        self.endpoint_name = endpoint.classifier.endpoint.attr_endpoint_name
        self.topic = self._alarm_topic(settings.alarm_email)
        self.drift_monitor = self._drift_monitor(settings, storage)
        self.schedule = scheduler.Schedule(
            self,
            "DriftMonitorSchedule",
            description="Runs the drift monitor over the endpoint's recent data capture",
            schedule=scheduler.ScheduleExpression.rate(
                Duration.minutes(settings.drift_monitor_rate_minutes)
            ),
            target=scheduler_targets.LambdaInvoke(
                self.drift_monitor.function,
                input=scheduler.ScheduleTargetInput.from_object({}),
                retry_attempts=2,
                max_event_age=Duration.minutes(settings.drift_monitor_rate_minutes),
            ),
        )
        self._upload_baseline(settings, storage)

        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._drift_alarms(settings)
        self._workflow_alarms(settings, workflow)
        self._endpoint_alarms(settings)
        self._function_alarms(settings, workflow)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
        self.dashboard = self._dashboard(settings, endpoint, workflow)

        CfnOutput(self, "AlarmTopicArn", value=self.topic.topic_arn)
        CfnOutput(
            self,
            "DriftReportsLocation",
            value=f"s3://{storage.bucket.bucket_name}/{DRIFT_REPORTS_PREFIX}",
        )
        self._suppress_findings()

    # -- notifications and the drift monitor -------------------------------------------------
    def _alarm_topic(self, email: str | None) -> sns.Topic:
        key = project_key(
            self, "AlarmTopicKey", description="Encrypts the Scones Unlimited alarm notifications"
        )
        # CloudWatch publishes alarm notifications to the encrypted topic with this key.
        key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"),
            "kms:Decrypt",
            "kms:GenerateDataKey*",
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="Scones Unlimited alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if email:
            topic.add_subscription(sns_subscriptions.EmailSubscription(email))
        return topic

    def _drift_monitor(self, settings: Settings, storage: StorageStack) -> PythonLambda:
        capture_prefix = f"{CAPTURE_PREFIX}{self.endpoint_name}/"
        monitor = PythonLambda(
            self,
            "DriftMonitorFunction",
            source_dir=DRIFT_MONITOR_SOURCE,
            service_name="drift_monitor",
            metrics_namespace=METRICS_NAMESPACE,
            log_retention=settings.log_retention,
            log_encryption_key=storage.encryption_key,
            # Reads up to a window of capture and draws two matplotlib plots.
            memory_size=1024,
            timeout_seconds=300,
            environment={
                "BUCKET_NAME": storage.bucket.bucket_name,
                "CAPTURE_PREFIX": capture_prefix,
                "BASELINE_KEY": DRIFT_BASELINE_KEY,
                "REPORT_PREFIX": DRIFT_REPORTS_PREFIX,
                "WINDOW_MINUTES": str(settings.drift_window_minutes),
                "DRIFT_THRESHOLD": str(settings.drift_threshold),
                "CONFIDENCE_THRESHOLD": str(settings.confidence_threshold),
                "MIN_RECORDS": str(settings.drift_min_records),
            },
        )
        storage.bucket.grant_read(monitor.function, f"{capture_prefix}*")
        storage.bucket.grant_read(monitor.function, DRIFT_BASELINE_KEY)
        storage.bucket.grant_put(monitor.function, f"{DRIFT_REPORTS_PREFIX}*")
        skip_checks(
            monitor.function,
            {
                "CKV_AWS_116": "Its only event is the schedule's empty input: the next run "
                "reads the same window, and a failed run alarms (DriftMonitorErrors).",
                "CKV_AWS_115": "One run per schedule period, so there is no burst to bound; "
                "a reservation would only take from the account's unreserved pool.",
            },
        )
        return monitor

    def _upload_baseline(self, settings: Settings, storage: StorageStack) -> None:
        upload_baseline(
            self,
            baseline=settings.model_record.with_name(DRIFT_BASELINE_FILE),
            bucket=storage.bucket,
            encryption_key=storage.encryption_key,
            log_retention=settings.log_retention,
        )

    # -- alarms ------------------------------------------------------------------------------
    def _alarm(self, construct_id: str, **props: Any) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(self, construct_id, **props)
        self.alarms[construct_id] = alarm
        return alarm

    def _drift_metric(
        self, metric_name: str, statistic: str, label: str | None = None
    ) -> cloudwatch.Metric:
        # The drift monitor publishes its figures without dimensions.
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=metric_name,
            statistic=statistic,
            period=Duration.minutes(self.settings.drift_monitor_rate_minutes),
            label=label,
        )

    def _drift_alarms(self, settings: Settings) -> None:
        self._alarm(
            "DriftDetected",
            alarm_description="The drift monitor found the recent capture unlike the baseline "
            "(see the report under monitoring/reports/)",
            metric=self._drift_metric("DriftDetected", cloudwatch.Stats.MAXIMUM),
            threshold=1,
            comparison_operator=GREATER_OR_EQUAL,
            evaluation_periods=1,
            # No traffic, no verdict: the monitor publishes DriftDetected only with enough
            # records, and silence is not drift.
            treat_missing_data=NOT_BREACHING,
        )
        self._alarm(
            "DriftMonitorSilent",
            alarm_description="The drift monitor has not reported for two scheduled runs "
            "(schedule disabled, invocation refused or the function failing)",
            metric=self._drift_metric("CapturedRecords", cloudwatch.Stats.SAMPLE_COUNT),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=2,
            # The monitor reports CapturedRecords on every run, traffic or not: a missing
            # value means it did not run.
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )

    def _workflow_alarms(self, settings: Settings, workflow: WorkflowStack) -> None:
        filter_ = workflow.functions["FilterInferences"]
        self._alarm(
            "LowConfidenceRate",
            alarm_description=f"More than {settings.low_confidence_rate_limit:.0%} of the "
            f"inferences are below the confidence threshold ({settings.confidence_threshold})",
            metric=cloudwatch.MathExpression(
                expression=f"IF(calls >= {MIN_EVENTS_FOR_A_RATE}, rate, 0)",
                using_metrics={
                    "rate": filter_.powertools_metric(
                        "LowConfidenceInferences",
                        statistic=cloudwatch.Stats.AVERAGE,
                        period=RATE_PERIOD,
                    ),
                    "calls": filter_.powertools_metric(
                        "LowConfidenceInferences",
                        statistic=cloudwatch.Stats.SAMPLE_COUNT,
                        period=RATE_PERIOD,
                    ),
                },
                label="low-confidence rate",
                period=RATE_PERIOD,
            ),
            threshold=settings.low_confidence_rate_limit,
            comparison_operator=GREATER,
            evaluation_periods=2,
            treat_missing_data=NOT_BREACHING,
        )
        machine = workflow.state_machine
        self._alarm(
            "WorkflowFailureRate",
            alarm_description=f"More than {settings.workflow_failure_rate_limit:.0%} of the "
            "workflow executions failed (every failure kind, low confidence included)",
            metric=cloudwatch.MathExpression(
                expression=f"IF(started >= {MIN_EVENTS_FOR_A_RATE}, failed / started, 0)",
                using_metrics={
                    "failed": machine.metric_failed(period=RATE_PERIOD),
                    "started": machine.metric_started(period=RATE_PERIOD),
                },
                label="failed executions / started",
                period=RATE_PERIOD,
            ),
            threshold=settings.workflow_failure_rate_limit,
            comparison_operator=GREATER,
            evaluation_periods=2,
            treat_missing_data=NOT_BREACHING,
        )

    def _endpoint_alarms(self, settings: Settings) -> None:
        for code in ("5XX", "4XX"):
            self._alarm(
                f"Endpoint{code}Errors",
                alarm_description=f"The endpoint answers {code} errors (5 or more in 5 minutes, "
                "twice in 15 minutes)",
                metric=endpoint_metric(
                    self.endpoint_name,
                    f"Invocation{code}Errors",
                    statistic=cloudwatch.Stats.SUM,
                    period=ENDPOINT_PERIOD,
                ),
                threshold=5,
                comparison_operator=GREATER_OR_EQUAL,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data=NOT_BREACHING,
            )
        self._alarm(
            "EndpointLatencyP99",
            alarm_description=f"Model latency p99 above {settings.endpoint_latency_p99_ms} ms "
            "for 15 minutes",
            # ModelLatency is in microseconds.
            metric=endpoint_metric(
                self.endpoint_name,
                "ModelLatency",
                statistic=cloudwatch.Stats.p(99),
                period=ENDPOINT_PERIOD,
            ),
            threshold=settings.endpoint_latency_p99_ms * 1000,
            comparison_operator=GREATER,
            evaluation_periods=3,
            treat_missing_data=NOT_BREACHING,
        )

    def _function_alarms(self, settings: Settings, workflow: WorkflowStack) -> None:
        functions = {**workflow.functions, "DriftMonitor": self.drift_monitor}
        for name, python_lambda in functions.items():
            function = python_lambda.function
            if name == "DriftMonitor":
                # One run per schedule period: any failed run matters.
                errors = function.metric_errors(
                    period=Duration.minutes(settings.drift_monitor_rate_minutes)
                )
                threshold, description = 1, "The drift monitor failed"
            else:
                # Typed handler errors (a bad upload, a low-confidence image) are expected
                # outcomes; a high share of them is not.
                errors = cloudwatch.MathExpression(
                    expression=f"IF(calls >= {MIN_EVENTS_FOR_A_RATE}, errors / calls, 0)",
                    using_metrics={
                        "errors": function.metric_errors(period=RATE_PERIOD),
                        "calls": function.metric_invocations(period=RATE_PERIOD),
                    },
                    label="errors / invocations",
                    period=RATE_PERIOD,
                )
                threshold = settings.workflow_failure_rate_limit
                description = f"More than {threshold:.0%} of the {name} invocations raised an error"
            self._alarm(
                f"{name}Errors",
                alarm_description=description,
                metric=errors,
                threshold=threshold,
                comparison_operator=GREATER_OR_EQUAL if name == "DriftMonitor" else GREATER,
                evaluation_periods=1,
                treat_missing_data=NOT_BREACHING,
            )
            self._alarm(
                f"{name}Throttles",
                alarm_description=f"Lambda throttled {name} (concurrency limit reached)",
                metric=function.metric_throttles(period=ENDPOINT_PERIOD),
                threshold=1,
                comparison_operator=GREATER_OR_EQUAL,
                evaluation_periods=1,
                treat_missing_data=NOT_BREACHING,
            )

    # -- dashboard ---------------------------------------------------------------------------
    def _dashboard(
        self, settings: Settings, endpoint: EndpointStack, workflow: WorkflowStack
    ) -> cloudwatch.Dashboard:
        machine = workflow.state_machine
        serialize = workflow.functions["SerializeImage"]
        classify = workflow.functions["ClassifyImage"]
        filter_ = workflow.functions["FilterInferences"]
        period = ENDPOINT_PERIOD

        def sagemaker(metric_name: str, statistic: str, label: str) -> cloudwatch.Metric:
            return endpoint_metric(
                self.endpoint_name, metric_name, statistic=statistic, period=period, label=label
            )

        throughput = cloudwatch.GraphWidget(
            title="Workflow executions",
            left=[
                machine.metric_started(period=period, label="started"),
                machine.metric_succeeded(period=period, label="classified"),
                machine.metric_failed(period=period, label="failed"),
                machine.metric_timed_out(period=period, label="timed out"),
            ],
            width=8,
        )
        failures = cloudwatch.GraphWidget(
            title="Failures by kind",
            left=[
                filter_.powertools_metric(
                    "LowConfidenceInferences",
                    statistic=cloudwatch.Stats.SUM,
                    period=period,
                    label="LowConfidence",
                ),
                serialize.powertools_metric(
                    "ImagesRejected",
                    statistic=cloudwatch.Stats.SUM,
                    period=period,
                    label="InvalidInput/ImageNotFound/InvalidImage/ImageTooLarge",
                ),
                classify.powertools_metric(
                    "EndpointFailures",
                    statistic=cloudwatch.Stats.SUM,
                    period=period,
                    label="endpoint failures (each attempt)",
                ),
                machine.metric_timed_out(period=period, label="timed out"),
            ],
            stacked=True,
            width=8,
        )
        low_confidence = cloudwatch.GraphWidget(
            title="Low-confidence rate",
            left=[
                filter_.powertools_metric(
                    "LowConfidenceInferences",
                    statistic=cloudwatch.Stats.AVERAGE,
                    period=period,
                    label="workflow (FilterInferences)",
                ),
                self._drift_metric(
                    "LowConfidenceRate", cloudwatch.Stats.AVERAGE, "captured (drift monitor)"
                ),
            ],
            left_annotations=[
                cloudwatch.HorizontalAnnotation(
                    value=settings.low_confidence_rate_limit, label="alarm limit"
                )
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, max=1),
            width=8,
        )
        invocations = cloudwatch.GraphWidget(
            title="Endpoint invocations",
            left=[
                sagemaker("Invocations", cloudwatch.Stats.SUM, "invocations"),
                sagemaker("Invocation4XXErrors", cloudwatch.Stats.SUM, "4XX"),
                sagemaker("Invocation5XXErrors", cloudwatch.Stats.SUM, "5XX"),
            ],
            width=8,
        )
        latency = cloudwatch.GraphWidget(
            title="Endpoint model latency (ms)",
            left=[
                cloudwatch.MathExpression(
                    expression=f"{stat} / 1000",
                    using_metrics={stat: sagemaker("ModelLatency", stat, stat)},
                    label=stat,
                    period=period,
                )
                for stat in ("p50", "p99")
            ],
            left_annotations=[
                cloudwatch.HorizontalAnnotation(
                    value=settings.endpoint_latency_p99_ms, label="p99 alarm"
                )
            ],
            width=8,
        )
        # SageMaker publishes no instance count for a real-time variant; invocations over
        # invocations per instance is the number of instances that served traffic.
        instances = cloudwatch.GraphWidget(
            title="Endpoint instances and load per instance",
            left=[
                cloudwatch.MathExpression(
                    expression="invocations / per_instance",
                    using_metrics={
                        "invocations": sagemaker("Invocations", cloudwatch.Stats.SUM, "calls"),
                        "per_instance": sagemaker(
                            "InvocationsPerInstance", cloudwatch.Stats.SUM, "per instance"
                        ),
                    },
                    label="instances serving",
                    period=period,
                )
            ],
            right=[
                cloudwatch.MathExpression(
                    expression=f"per_instance / {period.to_minutes()}",
                    using_metrics={
                        "per_instance": sagemaker(
                            "InvocationsPerInstance", cloudwatch.Stats.SUM, "per instance"
                        )
                    },
                    label="invocations per instance per minute",
                    period=period,
                )
            ],
            right_annotations=[
                cloudwatch.HorizontalAnnotation(
                    value=settings.autoscaling_invocations_per_instance,
                    label="autoscaling target",
                )
            ],
            width=8,
        )
        drift = cloudwatch.GraphWidget(
            title="Drift (KS statistic of the window against the baseline)",
            left=[self._drift_metric("DriftScore", cloudwatch.Stats.MAXIMUM, "drift score")],
            left_annotations=[
                cloudwatch.HorizontalAnnotation(value=settings.drift_threshold, label="threshold")
            ],
            right=[self._drift_metric("DriftDetected", cloudwatch.Stats.MAXIMUM, "drift")],
            left_y_axis=cloudwatch.YAxisProps(min=0, max=1),
            width=8,
        )
        traffic_mix = cloudwatch.GraphWidget(
            title="Captured traffic",
            left=[
                self._drift_metric("BicycleShare", cloudwatch.Stats.AVERAGE, "bicycle share"),
            ],
            right=[
                self._drift_metric("MeanBrightness", cloudwatch.Stats.AVERAGE, "brightness"),
                self._drift_metric("CapturedRecords", cloudwatch.Stats.SUM, "records"),
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, max=1),
            width=8,
        )
        alarms = cloudwatch.AlarmStatusWidget(
            title="Alarms",
            alarms=[*self.alarms.values(), *endpoint.classifier.rollback_alarms],
            width=8,
            height=6,
        )
        return cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=Duration.hours(24),
            widgets=[
                [throughput, failures, low_confidence],
                [invocations, latency, instances],
                [drift, traffic_mix, alarms],
            ],
        )

    def _suppress_findings(self) -> None:
        NagSuppressions.add_stack_suppressions(
            self,
            [
                {
                    "id": "AwsSolutions-L1",
                    "reason": "Python 3.12 is the runtime the design fixes for the project's "
                    "functions; the baseline upload runs the CDK-provided BucketDeployment "
                    "function, whose runtime the CDK version pins.",
                },
                {
                    "id": "AwsSolutions-IAM4",
                    "reason": "The CDK-provided BucketDeployment function that uploads the "
                    "drift baseline uses the AWS managed basic execution policy.",
                    "appliesTo": [
                        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                        "AWSLambdaBasicExecutionRole"
                    ],
                },
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "X-Ray has no resource-level permissions; the capture, baseline "
                    "and report prefixes and KMS data-key actions are CDK grants scoped as "
                    "narrowly as S3 and KMS allow; the BucketDeployment function copies from "
                    "the CDK asset bucket into the project bucket with CDK's own grants, "
                    "which cover the destination bucket's objects rather than a prefix.",
                    "appliesTo": [
                        "Resource::*",
                        "Action::s3:GetObject*",
                        "Action::s3:GetBucket*",
                        "Action::s3:List*",
                        "Action::s3:Abort*",
                        "Action::s3:DeleteObject*",
                        "Action::kms:GenerateDataKey*",
                        "Action::kms:ReEncrypt*",
                        {"regex": "/^Resource::.*/data-capture/.*\\*$/"},
                        {"regex": "/^Resource::.*/monitoring/.*$/"},
                        {"regex": "/^Resource::arn:<AWS::Partition>:s3:::cdk-.*\\*$/"},
                        {"regex": "/^Resource::.*Data[0-9A-F]+\\.?Arn.*/\\*$/"},
                        {"regex": "/^Resource::<DriftMonitorFunction.*Arn>:\\*$/"},
                    ],
                },
            ],
        )
