"""The classifier endpoint, deployed from the model record that training wrote."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from cdk_nag import NagSuppressions
from constructs import Construct

from stacks.constructs.classifier_endpoint import ClassifierEndpoint, EndpointProps


class EndpointStack(Stack):
    """The classifier endpoint; the workflow calls it by its ``reference``, a blue/green update
    rolls back on its ``rollback_alarms``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, props: EndpointProps, **kwargs
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.classifier = ClassifierEndpoint(self, "Classifier", props)
        self.reference = self.classifier.reference
        self.rollback_alarms = self.classifier.rollback_alarms
        CfnOutput(
            self,
            "EndpointName",
            value=self.reference.name,
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
