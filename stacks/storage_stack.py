"""The project bucket: data, model artifacts, data capture and incoming images."""

from __future__ import annotations

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from aws_cdk.region_info import FactName
from cdk_nag import NagSuppressions
from constructs import Construct

from stacks.checkov import skip_checks
from stacks.constructs.project_key import project_key
from stacks.names import (
    BUCKET_PARAMETER,
    CAPTURE_PREFIX,
    CHECKPOINTS_PREFIX,
    DATA_PREFIX,
    DRIFT_REPORTS_PREFIX,
    INCOMING_PREFIX,
    MODELS_PREFIX,
    ROLE_PARAMETER,
)


class StorageStack(Stack):
    """One encrypted, versioned bucket, emptied and deleted on `cdk destroy`.

    Publishes the bucket name and the SageMaker training role as stack outputs and SSM
    parameters under the project prefix, where `training/train.py` finds them.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        ssm_prefix: str,
        incoming_expiration_days: int,
        capture_expiration_days: int,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.encryption_key = project_key(
            self,
            "DataKey",
            description="Encrypts the Scones Unlimited bucket and endpoint data capture",
        )
        self._let_cloudwatch_logs_use_the_key()
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            # A deleted or overwritten log stays recoverable for 30 days.
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(capture_expiration_days),
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=True,
        )
        skip_checks(
            access_logs,
            {
                "CKV_AWS_18": "This bucket receives the server access logs; logging it to "
                "itself would loop."
            },
        )
        NagSuppressions.add_resource_suppressions(
            access_logs,
            [
                {
                    "id": "AwsSolutions-S1",
                    "reason": "This bucket receives the server access logs; logging it to itself "
                    "would loop.",
                }
            ],
        )
        self.bucket = s3.Bucket(
            self,
            "Data",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.encryption_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            event_bridge_enabled=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="data-bucket/",
            lifecycle_rules=[
                *(
                    s3.LifecycleRule(
                        id=rule_id,
                        prefix=prefix,
                        expiration=Duration.days(days),
                        noncurrent_version_expiration=Duration.days(1),
                    )
                    for rule_id, prefix, days in (
                        ("expire-incoming", INCOMING_PREFIX, incoming_expiration_days),
                        ("expire-capture", CAPTURE_PREFIX, capture_expiration_days),
                        ("expire-drift-reports", DRIFT_REPORTS_PREFIX, capture_expiration_days),
                    )
                ),
                s3.LifecycleRule(
                    id="expire-noncurrent",
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
            ],
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=True,
        )
        self.training_role = self._training_role()

        CfnOutput(
            self,
            "BucketName",
            value=self.bucket.bucket_name,
            description="The project bucket (training data, models, capture, incoming)",
        )
        CfnOutput(
            self,
            "TrainingRoleArn",
            value=self.training_role.role_arn,
            description="The role SageMaker training jobs run as",
        )
        for parameter_id, name, value in (
            ("BucketNameParameter", BUCKET_PARAMETER, self.bucket.bucket_name),
            ("TrainingRoleParameter", ROLE_PARAMETER, self.training_role.role_arn),
        ):
            ssm.StringParameter(
                self,
                parameter_id,
                parameter_name=f"{ssm_prefix}/{name}",
                string_value=value,
                description="Read by training/train.py",
            )
        NagSuppressions.add_stack_suppressions(
            self,
            [
                {
                    "id": "AwsSolutions-IAM4",
                    "reason": "The CDK-provided custom resource that turns on the bucket's "
                    "EventBridge notifications uses the AWS managed basic execution policy.",
                    # jsii reads "appliesTo": an "applies_to" key is dropped, silently
                    # turning this into a blanket suppression of the rule.
                    "appliesTo": [
                        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                        "AWSLambdaBasicExecutionRole"
                    ],
                }
            ],
        )

    def _let_cloudwatch_logs_use_the_key(self) -> None:
        """The key policy statement AWS documents for KMS-encrypted log groups: the regional
        CloudWatch Logs principal, only for log groups of this account and region."""
        self.encryption_key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": self.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )

    def _training_role(self) -> iam.Role:
        """The role SageMaker training jobs assume: read data, write models and checkpoints."""
        role = iam.Role(
            self,
            "TrainingRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Runs the bicycle/motorcycle training jobs",
        )
        self.bucket.grant_read(role, f"{DATA_PREFIX}*")
        self.bucket.grant_read_write(role, f"{CHECKPOINTS_PREFIX}*")
        self.bucket.grant_put(role, f"{MODELS_PREFIX}*")
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={
                    "StringLike": {"s3:prefix": [f"{DATA_PREFIX}*", f"{CHECKPOINTS_PREFIX}*"]}
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[
                    self.format_arn(
                        service="ecr",
                        account=self.regional_fact(FactName.DLC_REPOSITORY_ACCOUNT),
                        resource="repository",
                        resource_name="pytorch-training",
                    )
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    self.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/sagemaker/TrainingJobs:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        NagSuppressions.add_resource_suppressions(
            role,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "Training reads the data/ prefix, writes models/ and checkpoints/ "
                    "(CDK grants, whose s3 and KMS action groups are the narrowest ones), "
                    "and writes its own log group; ecr:GetAuthorizationToken and "
                    "cloudwatch:PutMetricData (limited by a namespace condition) have no "
                    "resource-level permissions.",
                    # jsii reads "appliesTo": an "applies_to" key is dropped, silently
                    # turning this into a blanket suppression of the rule.
                    "appliesTo": [
                        "Resource::*",
                        *(
                            f"Action::{action}"
                            for action in (
                                "s3:GetObject*",
                                "s3:GetBucket*",
                                "s3:List*",
                                "s3:Abort*",
                                "s3:DeleteObject*",
                                "kms:GenerateDataKey*",
                                "kms:ReEncrypt*",
                            )
                        ),
                        *(
                            f"Resource::<{self.get_logical_id(self.bucket.node.default_child)}.Arn>"
                            f"/{prefix}*"
                            for prefix in (DATA_PREFIX, MODELS_PREFIX, CHECKPOINTS_PREFIX)
                        ),
                        "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
                        "log-group:/aws/sagemaker/TrainingJobs:*",
                    ],
                }
            ],
            apply_to_children=True,
        )
        return role
