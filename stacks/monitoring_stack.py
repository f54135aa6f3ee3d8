"""Monitoring: the drift monitor on a schedule, the alarms, their SNS topic and the dashboard.

The pieces (in stacks/constructs/: ``drift_monitor``, ``alarm_topic``, ``alarms``,
``service_alarms``, ``dashboard``) add their resources to this stack itself, not to scopes of
their own. A logical ID is a hash of the construct path below the stack, so a scope per piece
would give each resource a new ID, and CloudFormation would replace them all (the function and
its log group, the topic's key, every alarm); the baseline upload's owner tag on the bucket
(a hash of its path) would change too. So the IDs stay those first deployed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagSuppressions
from constructs import Construct

from stacks.constructs.alarm_topic import AlarmTopic
from stacks.constructs.alarms import AlarmLimits, AlarmSet, traffic_alarms
from stacks.constructs.classification_steps import ClassificationFunctions
from stacks.constructs.classifier_endpoint import EndpointRef
from stacks.constructs.dashboard import MonitoringDashboard
from stacks.constructs.drift_monitor import DriftMonitor, DriftMonitorSettings
from stacks.constructs.project_logs import ProjectLogs
from stacks.constructs.service_alarms import service_alarms
from stacks.names import DRIFT_REPORTS_PREFIX


class MonitoringStack(Stack):
    """Drift monitor (EventBridge Scheduler -> Lambda), alarms -> SNS topic, one dashboard.

    Its props by what uses them: the drift monitor reads ``endpoint``'s data capture in
    ``bucket`` (probabilities of ``class_names``), uploads the drift baseline beside
    ``model_record`` and judges by ``drift``; the alarms watch the endpoint, the workflow's
    ``lambdas`` and ``state_machine`` at ``limits`` and mail ``alarm_email`` (if set) through
    the topic; the dashboard also shows the endpoint's ``rollback_alarms`` and the
    ``autoscaling_target``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        project_logs: ProjectLogs,
        endpoint: EndpointRef,
        class_names: Sequence[str],
        model_record: Path,
        drift: DriftMonitorSettings,
        lambdas: ClassificationFunctions,
        state_machine: sfn.IStateMachine,
        limits: AlarmLimits,
        alarm_email: str | None,
        rollback_alarms: Sequence[cloudwatch.IAlarm],
        autoscaling_target: int,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        topic = AlarmTopic(self, email=alarm_email)
        self.topic = topic.topic
        self.drift_monitor = DriftMonitor(
            self,
            bucket=bucket,
            encryption_key=project_logs.encryption_key,
            endpoint_name=endpoint.name,
            class_names=class_names,
            model_record=model_record,
            log_retention=project_logs.retention,
            settings=drift,
        )

        alarms = AlarmSet(self)
        traffic_alarms(
            alarms,
            drift_monitor=self.drift_monitor,
            filter_inferences=lambdas.filter,
            state_machine=state_machine,
            limits=limits,
        )
        service_alarms(
            alarms,
            endpoint_name=endpoint.name,
            functions=lambdas.by_step(),
            drift_monitor=self.drift_monitor,
            limits=limits,
        )
        topic.notify_on(alarms.alarms.values())
        self.alarms = alarms.alarms
        self.dashboard = MonitoringDashboard(
            self,
            endpoint_name=endpoint.name,
            state_machine=state_machine,
            lambdas=lambdas,
            drift_monitor=self.drift_monitor,
            alarms=[*self.alarms.values(), *rollback_alarms],
            limits=limits,
            autoscaling_target=autoscaling_target,
        ).dashboard

        CfnOutput(self, "AlarmTopicArn", value=self.topic.topic_arn)
        CfnOutput(
            self,
            "DriftReportsLocation",
            value=f"s3://{bucket.bucket_name}/{DRIFT_REPORTS_PREFIX}",
        )
        self._suppress_findings()

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
