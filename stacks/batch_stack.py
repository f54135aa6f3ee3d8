"""Batch mode: classify every object under a prefix with a Step Functions Distributed Map."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagSuppressions
from constructs import Construct

from stacks.constructs.classification_steps import ClassificationFunctions, classification_chain
from stacks.constructs.project_logs import ProjectLogs, logged_state_machine
from stacks.names import BATCH_PREFIX, BATCH_RESULTS_PREFIX

# The capacity retry budget of a batch item: inside an Express child's 5-minute limit.
EXPRESS_RETRY_MINUTES = 4
# A batch of 10,000 images at the default concurrency takes minutes; a day is a hard stop.
BATCH_TIMEOUT = Duration.hours(24)


class BatchStack(Stack):
    """Start an execution with ``{"prefix": "batch/<name>/"}``.

    A Distributed Map lists the objects under the prefix (S3 ListObjectsV2) and runs the
    workflow's three classification steps (``lambdas``) on each, at most ``max_concurrency``
    at a time, as Express child workflows. Step Functions writes every item's outcome (label
    and confidence, or the failure kind and cause) to ``batch-results/<execution>/`` in S3.
    The batch fails early when more than ``tolerated_failure_percentage`` of the images fail,
    which is what an endpoint outage looks like.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        lambdas: ClassificationFunctions,
        bucket: s3.IBucket,
        project_logs: ProjectLogs,
        max_concurrency: int,
        tolerated_failure_percentage: int,
        capacity_retry_minutes: int,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        bucket.grant_read(lambdas.serialize.function, f"{BATCH_PREFIX}*")
        NagSuppressions.add_resource_suppressions(
            lambdas.serialize.role,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "Batch mode lets the serialize function read the objects under "
                    f"{BATCH_PREFIX}, a CDK grant scoped as narrowly as S3 allows.",
                    "appliesTo": [{"regex": f"/^Resource::.*/{BATCH_PREFIX}\\*$/"}],
                }
            ],
            apply_to_children=True,
        )

        classify_each = sfn.DistributedMap(
            self,
            "ClassifyEachObject",
            comment="The workflow's classification steps on every object under the prefix",
            item_reader=sfn.S3ObjectsItemReader(
                bucket=bucket, prefix=sfn.JsonPath.string_at("$.prefix")
            ),
            item_selector={
                "s3_bucket": bucket.bucket_name,
                "s3_key": sfn.JsonPath.string_at("$$.Map.Item.Value.Key"),
            },
            max_concurrency=max_concurrency,
            map_execution_type=sfn.StateMachineType.EXPRESS,
            tolerated_failure_percentage=tolerated_failure_percentage,
            result_writer_v2=sfn.ResultWriterV2(bucket=bucket, prefix=BATCH_RESULTS_PREFIX),
            result_path=sfn.JsonPath.DISCARD,
        )
        # An Express child runs 5 minutes at most: its capacity retry must end before.
        retry_minutes = min(capacity_retry_minutes, EXPRESS_RETRY_MINUTES)
        classify_each.item_processor(classification_chain(self, lambdas.for_chain(), retry_minutes))

        check_prefix = (
            sfn.Choice(self, "IsBatchPrefix", comment=f"Only prefixes under {BATCH_PREFIX}")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_string("$.prefix"),
                    sfn.Condition.string_matches("$.prefix", f"{BATCH_PREFIX}*"),
                ),
                classify_each.next(sfn.Succeed(self, "BatchDone")),
            )
            .otherwise(
                sfn.Fail(
                    self,
                    "InvalidBatchInput",
                    error="InvalidInput",
                    cause=f'the input must be {{"prefix": "{BATCH_PREFIX}<name>/"}}',
                )
            )
        )
        self.state_machine = logged_state_machine(
            self,
            "BatchClassify",
            definition=check_prefix,
            timeout=BATCH_TIMEOUT,
            log_group_id="BatchLogs",
            project_logs=project_logs,
        )
        if bucket.encryption_key is not None:
            # The result writer's objects are encrypted with the bucket's key.
            bucket.encryption_key.grant_encrypt_decrypt(self.state_machine)
        CfnOutput(
            self,
            "BatchStateMachineArn",
            value=self.state_machine.state_machine_arn,
            description=f'Start with {{"prefix": "{BATCH_PREFIX}<name>/"}}; results go to '
            f"{BATCH_RESULTS_PREFIX}",
        )
        NagSuppressions.add_resource_suppressions(
            self.state_machine,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "Grants that CDK derives from the definition: X-Ray and "
                    "CloudWatch Logs delivery have no resource-level permissions; the "
                    "Distributed Map's result writer gets the bucket's objects (CDK scopes it "
                    "to the bucket, not the prefix), KMS data-key actions for them, its own "
                    "child executions, and the Lambda ARN wildcards cover function versions. "
                    "(cdk-nag names a cross-stack ARN either by its id or by its "
                    "Fn::GetStackOutput, hence the patterns.)",
                    "appliesTo": [
                        "Resource::*",
                        "Action::kms:GenerateDataKey*",
                        "Action::kms:ReEncrypt*",
                        {"regex": "/^Resource::arn:<AWS::Partition>:s3:::.*/\\*$/"},
                        {"regex": "/^Resource::.*Function[0-9A-F]+\\.?Arn.*:\\*$/"},
                        {"regex": "/^Resource::arn:<AWS::Partition>:states:.*:execution:.*\\*$/"},
                    ],
                }
            ],
            apply_to_children=True,
        )
