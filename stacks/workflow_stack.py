"""The event-driven workflow: S3 upload -> EventBridge -> serialize, classify, filter."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagSuppressions
from constructs import Construct

from stacks.checkov import skip_checks
from stacks.config import Settings
from stacks.constructs.classification_steps import FAILURES_BY_STEP, classification_chain
from stacks.constructs.project_key import project_key
from stacks.constructs.python_lambda import PythonLambda
from stacks.endpoint_stack import EndpointStack
from stacks.names import INCOMING_PREFIX, METRICS_NAMESPACE
from stacks.storage_stack import StorageStack

LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"


class WorkflowStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        storage: StorageStack,
        endpoint: EndpointStack,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retention = settings.log_retention
        self.log_key = storage.encryption_key
        classifier = endpoint.classifier

        def function(name: str, service: str, **options) -> PythonLambda:
            return PythonLambda(
                self,
                f"{name}Function",
                source_dir=LAMBDA_SRC / service,
                service_name=service,
                metrics_namespace=METRICS_NAMESPACE,
                log_retention=retention,
                log_encryption_key=self.log_key,
                **options,
            )

        serialize = function("SerializeImage", "serialize_image")
        classify = function(
            "ClassifyImage",
            "classify_image",
            memory_size=256,
            # Bounds the calls in flight to what the endpoint serves at its largest: a burst
            # waits in Step Functions' throttling retry instead of storming the endpoint.
            reserved_concurrency=settings.classify_reserved_concurrency,
            environment={
                "ENDPOINT_NAME": classifier.endpoint.attr_endpoint_name,
                "ENDPOINT_READ_TIMEOUT_SECONDS": "10",
            },
        )
        filter_ = function(
            "FilterInferences",
            "filter_inferences",
            memory_size=128,
            timeout_seconds=10,
            environment={"THRESHOLD": str(settings.confidence_threshold)},
        )
        storage.bucket.grant_read(serialize.function, f"{INCOMING_PREFIX}*")
        classify.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:InvokeEndpoint"],
                resources=[classifier.endpoint_arn],
            )
        )
        self.functions = {
            "SerializeImage": serialize,
            "ClassifyImage": classify,
            "FilterInferences": filter_,
        }
        self._skip_checks_that_do_not_apply()

        self.state_machine = self._state_machine(settings, retention)
        self.rule = events.Rule(
            self,
            "OnIncomingImage",
            description="Classify every image uploaded under incoming/",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [storage.bucket.bucket_name]},
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

    def _state_machine(self, settings: Settings, retention: logs.RetentionDays) -> sfn.StateMachine:
        definition = classification_chain(
            self,
            {name: self.functions[name].function for name in FAILURES_BY_STEP},
            settings.capacity_retry_minutes,
        )
        log_group = logs.LogGroup(
            self,
            "WorkflowLogs",
            retention=retention,
            encryption_key=self.log_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        return sfn.StateMachine(
            self,
            "ClassifyWorkflow",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.minutes(settings.workflow_timeout_minutes),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
        )

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
        for python_lambda in self.functions.values():
            skip_checks(python_lambda.function, {"CKV_AWS_116": synchronous})
        for name in ("SerializeImage", "FilterInferences"):
            skip_checks(
                self.functions[name].function,
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
