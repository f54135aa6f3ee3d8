"""The classifier endpoint, deployed from the model record that training wrote."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from cdk_nag import NagSuppressions
from constructs import Construct

from stacks.config import Settings
from stacks.constructs.classifier_endpoint import (
    ClassifierEndpoint,
    EndpointRollout,
    EndpointScaling,
)
from stacks.names import CAPTURE_PREFIX
from stacks.storage_stack import StorageStack
from training.record import ModelRecord


class EndpointStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        storage: StorageStack,
        record: ModelRecord,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.classifier = ClassifierEndpoint(
            self,
            "Classifier",
            record=record,
            bucket=storage.bucket,
            capture_prefix=CAPTURE_PREFIX,
            encryption_key=storage.encryption_key,
            instance_type=settings.endpoint_instance_type,
            instance_count=settings.endpoint_instance_count,
            capture_sampling_percentage=settings.data_capture_sampling_percentage,
            scaling=EndpointScaling(
                min_capacity=settings.autoscaling_min_capacity,
                max_capacity=settings.autoscaling_max_capacity,
                invocations_per_instance=settings.autoscaling_invocations_per_instance,
            ),
            rollout=EndpointRollout(
                traffic_routing=settings.rollout_traffic_routing,
                step_percentage=settings.rollout_step_percentage,
                bake=Duration.minutes(settings.rollout_bake_minutes),
                latency_p99_ms=settings.endpoint_latency_p99_ms,
            ),
            log_retention=settings.log_retention,
        )
        CfnOutput(
            self,
            "EndpointName",
            value=self.classifier.endpoint.attr_endpoint_name,
            description="Invoke with sagemaker-runtime InvokeEndpoint",
        )
        NagSuppressions.add_resource_suppressions(
            self.classifier.model,
            [
                {
                    "id": "AwsSolutions-SM1",
                    "reason": "The model runs with network isolation (no network access at all), "
                    "so a VPC would add NAT cost and no protection.",
                }
            ],
        )
        NagSuppressions.add_resource_suppressions(
            self.classifier.role,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "ecr:GetAuthorizationToken and cloudwatch:PutMetricData (limited "
                    "by a namespace condition) have no resource-level permissions; the "
                    "capture prefix, the log streams of the endpoint's own log group and "
                    "KMS data-key actions are the narrowest grants SageMaker needs.",
                    # jsii reads "appliesTo": an "applies_to" key is dropped, silently
                    # turning this into a blanket suppression of the rule.
                    "appliesTo": [
                        "Resource::*",
                        "Action::kms:GenerateDataKey*",
                        "Action::kms:ReEncrypt*",
                        "Action::s3:Abort*",
                        {"regex": "/^Resource::.*/data-capture/\\*$/"},
                        {"regex": "/^Resource::arn:<AWS::Partition>:logs:.*:\\*$/"},
                        {"regex": "/^Resource::arn:<AWS::Partition>:s3:::.*/\\*$/"},
                    ],
                }
            ],
            apply_to_children=True,
        )
