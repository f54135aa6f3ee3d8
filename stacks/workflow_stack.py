"""The event-driven workflow: S3 upload -> EventBridge -> serialize, classify, filter."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagSuppressions
from constructs import Construct

from stacks.checkov import skip_checks
from stacks.constructs.classification_steps import ClassificationFunctions, classification_chain
from stacks.constructs.classifier_endpoint import EndpointRef
from stacks.constructs.project_key import project_key
from stacks.constructs.project_logs import ProjectLogs, logged_state_machine
from stacks.constructs.python_lambda import PythonLambda
from stacks.names import (
    CLASS_NAMES_VARIABLE,
    CLASSIFY_STEP,
    FILTER_STEP,
    INCOMING_PREFIX,
    METRICS_NAMESPACE,
    SERIALIZE_STEP,
    THRESHOLD_VARIABLE,
)

LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"


class WorkflowStack(Stack):
    """An upload under incoming/ starts the state machine: serialize, classify (on
    ``endpoint``, whose answer is a probability for each of ``class_names``), filter at
    ``confidence_threshold``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        project_logs: ProjectLogs,
        endpoint: EndpointRef,
        class_names: Sequence[str],
        confidence_threshold: float,
        classify_reserved_concurrency: int,
        capacity_retry_minutes: int,
        timeout: Duration,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)

        classes = {CLASS_NAMES_VARIABLE: ",".join(class_names)}

        def function(step: str, service: str, **options) -> PythonLambda:
            return PythonLambda(
                self,
                f"{step}Function",
                source_dir=LAMBDA_SRC / service,
                service_name=service,
                metrics_namespace=METRICS_NAMESPACE,
                log_retention=project_logs.retention,
                log_encryption_key=project_logs.encryption_key,
                **options,
            )

        self.lambdas = ClassificationFunctions(
            serialize=function(SERIALIZE_STEP, "serialize_image"),
            classify=function(
                CLASSIFY_STEP,
                "classify_image",
                memory_size=256,
                # Bounds the calls in flight to what the endpoint serves at its largest: a
                # burst waits in Step Functions' throttling retry instead of storming the
                # endpoint.
                reserved_concurrency=classify_reserved_concurrency,
                environment={
                    "ENDPOINT_NAME": endpoint.name,
                    "ENDPOINT_READ_TIMEOUT_SECONDS": "10",
                    **classes,
                },
            ),
            filter=function(
                FILTER_STEP,
                "filter_inferences",
                memory_size=128,
                timeout_seconds=10,
                environment={THRESHOLD_VARIABLE: str(confidence_threshold), **classes},
            ),
        )
        bucket.grant_read(self.lambdas.serialize.function, f"{INCOMING_PREFIX}*")
        self.lambdas.classify.function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:InvokeEndpoint"], resources=[endpoint.arn])
        )
        self._skip_checks_that_do_not_apply()

        self.state_machine = logged_state_machine(
            self,
            "ClassifyWorkflow",
            definition=classification_chain(self, self.lambdas.for_chain(), capacity_retry_minutes),
            timeout=timeout,
            log_group_id="WorkflowLogs",
            project_logs=project_logs,
        )
        self.rule = events.Rule(
            self,
            "OnIncomingImage",
            description="Classify every image uploaded under incoming/",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [bucket.bucket_name]},
                    "object": {"key": [{"prefix": INCOMING_PREFIX}]},
                },
            ),
        )
        undelivered = sqs.Queue(
            self,
            "UndeliveredEvents",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self._undelivered_events_key(),
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.rule.add_target(
            targets.SfnStateMachine(
                self.state_machine,
                dead_letter_queue=undelivered,
                retry_attempts=10,
                max_event_age=Duration.hours(24),
            )
        )
        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        CfnOutput(
            self,
            "UndeliveredEventsQueueUrl",
            value=undelivered.queue_url,
            description="Upload events that could not start an execution",
        )
        self._suppress_findings(undelivered)

    def _undelivered_events_key(self) -> kms.Key:
        """The queue's own key, which EventBridge may use for the rules of this account (the
        queue policy admits only this stack's rule; naming the rule here would be a cycle)."""
        key = project_key(
            self,
            "UndeliveredEventsKey",
            description="Encrypts the Scones Unlimited undelivered upload events",
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {
                        "aws:SourceArn": self.format_arn(
                            service="events", resource="rule", resource_name="*"
                        )
                    },
                },
            )
        )
        return key

    def _skip_checks_that_do_not_apply(self) -> None:
        synchronous = (
            "Step Functions invokes it synchronously and routes every failure to a Fail state "
            "that names the error: a DLQ (for asynchronous invocations) would never receive "
            "anything."
        )
        for python_lambda in self.lambdas.by_step().values():
            skip_checks(python_lambda.function, {"CKV_AWS_116": synchronous})
        for python_lambda in (self.lambdas.serialize, self.lambdas.filter):
            skip_checks(
                python_lambda.function,
                {
                    "CKV_AWS_115": "Calls no capacity-bound service (S3 reads or plain "
                    "computation): ClassifyImage's reservation already bounds each execution, "
                    "and a reservation here would only take from the account's unreserved pool."
                },
            )

    def _suppress_findings(self, undelivered: sqs.Queue) -> None:
        NagSuppressions.add_resource_suppressions(
            undelivered,
            [
                {
                    "id": "AwsSolutions-SQS3",
                    "reason": "This queue is itself the dead-letter queue of the rule's target.",
                }
            ],
        )
        NagSuppressions.add_stack_suppressions(
            self,
            [
                {
                    "id": "AwsSolutions-L1",
                    "reason": "Python 3.12 is the runtime the design fixes: it matches the Python "
                    "of the PyTorch inference image and the wheels bundled for it.",
                },
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "X-Ray and CloudWatch Logs delivery have no resource-level "
                    "permissions; the incoming/ prefix read and KMS data-key actions are "
                    "CDK grants scoped as narrowly as S3 and KMS allow; Lambda ARN "
                    "wildcards cover the function versions Step Functions invokes.",
                    # jsii reads "appliesTo": an "applies_to" key is dropped, silently
                    # turning this into a blanket suppression of the rule.
                    "appliesTo": [
                        "Resource::*",
                        "Action::s3:GetObject*",
                        "Action::s3:GetBucket*",
                        "Action::s3:List*",
                        "Action::kms:GenerateDataKey*",
                        "Action::kms:ReEncrypt*",
                        {"regex": "/^Resource::.*/incoming/\\*$/"},
                        {"regex": "/^Resource::<.*Function.*Arn>:\\*$/"},
                    ],
                },
            ],
        )
