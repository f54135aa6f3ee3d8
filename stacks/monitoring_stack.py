"""Monitoring: the drift monitor on a schedule, the alarms, their SNS topic and the dashboard.

The pieces (in stacks/constructs/: ``drift_monitor``, ``alarm_topic``, ``alarms``,
``service_alarms``, ``dashboard``) add their resources to this stack itself, not to scopes of
their own. A logical ID is a hash of the construct path below the stack, so a scope per piece
would give each resource a new ID, and CloudFormation would replace them all (the function and
its log group, the topic's key, every alarm); the baseline upload's owner tag on the bucket
(a hash of its path) would change too. So the IDs stay those first deployed.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from aws_cdk import CfnOutput, Stack
from cdk_nag import NagSuppressions
from constructs import Construct

from stacks.config import Settings
from stacks.constructs.alarm_topic import AlarmTopic
from stacks.constructs.alarms import AlarmLimits, AlarmSet, traffic_alarms
from stacks.constructs.dashboard import MonitoringDashboard
from stacks.constructs.drift_monitor import DriftMonitor, DriftMonitorSettings
from stacks.constructs.service_alarms import service_alarms
from stacks.endpoint_stack import EndpointStack
from stacks.names import DRIFT_REPORTS_PREFIX
from stacks.storage_stack import StorageStack
from stacks.workflow_stack import WorkflowStack

Props = TypeVar("Props")


def _fields_of(settings: Settings, props: type[Props]) -> Props:
    """``props``, a dataclass of ``Settings`` fields (same names), filled from ``settings``."""
    fields = dataclasses.fields(props)
    return props(**{field.name: getattr(settings, field.name) for field in fields})


class MonitoringStack(Stack):
    """Drift monitor (EventBridge Scheduler -> Lambda), alarms -> SNS topic, one dashboard.

    Of ``settings`` it reads the fields of ``DriftMonitorSettings`` and ``AlarmLimits`` (the
    drift_* ones, confidence_threshold, low_confidence_rate_limit, workflow_failure_rate_limit,
    endpoint_latency_p99_ms), and model_record (the drift baseline is beside it),
    log_retention, alarm_email and autoscaling_invocations_per_instance.
    """

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
        # A reference to the endpoint stack's output: this stack's own AWS::StackName differs.
        endpoint_name = endpoint.classifier.endpoint.attr_endpoint_name
        topic = AlarmTopic(self, email=settings.alarm_email)
        self.topic = topic.topic
        self.drift_monitor = DriftMonitor(
            self,
            bucket=storage.bucket,
            encryption_key=storage.encryption_key,
            endpoint_name=endpoint_name,
            model_record=settings.model_record,
            log_retention=settings.log_retention,
            settings=_fields_of(settings, DriftMonitorSettings),
        )

        limits = _fields_of(settings, AlarmLimits)
        alarms = AlarmSet(self)
        traffic_alarms(
            alarms,
            drift_monitor=self.drift_monitor,
            filter_inferences=workflow.functions["FilterInferences"],
            state_machine=workflow.state_machine,
            limits=limits,
        )
        service_alarms(
            alarms,
            endpoint_name=endpoint_name,
            functions=workflow.functions,
            drift_monitor=self.drift_monitor,
            limits=limits,
        )
        topic.notify_on(alarms.alarms.values())
        self.alarms = alarms.alarms
        self.dashboard = MonitoringDashboard(
            self,
            endpoint_name=endpoint_name,
            state_machine=workflow.state_machine,
            functions=workflow.functions,
            drift_monitor=self.drift_monitor,
            alarms=[*self.alarms.values(), *endpoint.classifier.rollback_alarms],
            limits=limits,
            autoscaling_target=settings.autoscaling_invocations_per_instance,
        ).dashboard

        CfnOutput(self, "AlarmTopicArn", value=self.topic.topic_arn)
        CfnOutput(
            self,
            "DriftReportsLocation",
            value=f"s3://{storage.bucket.bucket_name}/{DRIFT_REPORTS_PREFIX}",
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
