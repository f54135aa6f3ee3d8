"""The event-driven workflow: S3 upload -> EventBridge -> serialize, classify, filter."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from cdk_nag import NagSuppressions
from constructs import Construct

from stacks.config import Settings
from stacks.constructs.python_lambda import PythonLambda
from stacks.endpoint_stack import EndpointStack
from stacks.storage_stack import INCOMING_PREFIX, StorageStack

LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"
METRICS_NAMESPACE = "SconesUnlimited"

# Errors the Lambda service raises for reasons unrelated to the input: worth retrying.
TRANSIENT_LAMBDA_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
]
# Each failure kind ends in its own Fail state, named after the kind; the key is the state's
# error name, the values the handler error types routed to it.
FAILURE_KINDS: dict[str, list[str]] = {
    "InvalidInput": ["InvalidInput"],
    "ImageNotFound": ["ImageNotFound"],
    "InvalidImage": ["InvalidImage"],
    "ImageTooLarge": ["ImageTooLarge"],
    "EndpointError": ["EndpointError", "EndpointUnavailable"],
    "LowConfidence": ["LowConfidence"],
}
FAILURES_BY_STEP = {
    "SerializeImage": ["InvalidInput", "ImageNotFound", "InvalidImage", "ImageTooLarge"],
    "ClassifyImage": ["InvalidInput", "EndpointError"],
    "FilterInferences": ["InvalidInput", "LowConfidence"],
}
UNEXPECTED_FAILURE = "UnexpectedError"


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
        classifier = endpoint.classifier

        def function(name: str, service: str, **options) -> PythonLambda:
            return PythonLambda(
                self,
                f"{name}Function",
                source_dir=LAMBDA_SRC / service,
                service_name=service,
                metrics_namespace=METRICS_NAMESPACE,
                log_retention=retention,
                **options,
            )

        serialize = function("SerializeImage", "serialize_image")
        classify = function(
            "ClassifyImage",
            "classify_image",
            memory_size=256,
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
            encryption=sqs.QueueEncryption.SQS_MANAGED,
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
        failures = {
            kind: sfn.Fail(self, kind, error=kind, cause_path="$.error.Cause")
            for kind in FAILURE_KINDS
        }
        # Anything else (a Lambda crash, a timeout) keeps its own error name.
        unexpected = sfn.Fail(
            self, UNEXPECTED_FAILURE, error_path="$.error.Error", cause_path="$.error.Cause"
        )

        def step(name: str) -> tasks.LambdaInvoke:
            task = tasks.LambdaInvoke(
                self,
                name,
                lambda_function=self.functions[name].function,
                payload_response_only=True,
                retry_on_service_exceptions=False,
            )
            task.add_retry(
                errors=TRANSIENT_LAMBDA_ERRORS,
                interval=Duration.seconds(1),
                max_attempts=3,
                backoff_rate=2,
                jitter_strategy=sfn.JitterType.FULL,
            )
            return task

        serialize, classify, filter_ = (step(name) for name in FAILURES_BY_STEP)
        classify.add_retry(
            errors=["EndpointUnavailable"],
            interval=Duration.seconds(2),
            max_attempts=4,
            backoff_rate=2,
            max_delay=Duration.seconds(20),
            jitter_strategy=sfn.JitterType.FULL,
        )
        for task, (_, kinds) in zip(
            (serialize, classify, filter_), FAILURES_BY_STEP.items(), strict=True
        ):
            for kind in kinds:
                task.add_catch(failures[kind], errors=FAILURE_KINDS[kind], result_path="$.error")
            task.add_catch(unexpected, errors=["States.ALL"], result_path="$.error")

        definition = serialize.next(classify).next(filter_).next(sfn.Succeed(self, "Classified"))
        log_group = logs.LogGroup(
            self, "WorkflowLogs", retention=retention, removal_policy=RemovalPolicy.DESTROY
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
