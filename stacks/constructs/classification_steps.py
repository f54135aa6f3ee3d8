"""The three classification steps with their retries and failure routes, for any state machine.

The event-driven workflow runs them once per upload; the batch mode runs them once per object
of a prefix, inside a Distributed Map. Both get the same states, so an image ends the same way
in either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.config import (
    CAPACITY_RETRY_INTERVAL_SECONDS,
    CAPACITY_RETRY_MAX_DELAY_SECONDS,
    CAPACITY_RETRY_MINUTES,
    capacity_retry_attempts,
)
from stacks.constructs.python_lambda import PythonLambda
from stacks.names import CLASSIFY_STEP, FILTER_STEP, SERIALIZE_STEP

# Errors the Lambda service raises for reasons unrelated to the input: worth retrying.
TRANSIENT_LAMBDA_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
]
# What a burst raises in the classify step: worth waiting for a scale-out.
CAPACITY_ERRORS = ["Lambda.TooManyRequestsException", "EndpointBusy"]
# The endpoint's other transient failures (its own 5xx, no connection): a few quick retries,
# 2-20 s each with full jitter (15 s in all on average, 30 s at most), as before the capacity
# retrier; a scale-out would not mend them.
ENDPOINT_RETRY_ERRORS = ["EndpointUnavailable"]
ENDPOINT_RETRY_INTERVAL_SECONDS = 2
ENDPOINT_RETRY_ATTEMPTS = 4
ENDPOINT_RETRY_MAX_DELAY_SECONDS = 20
# Each failure kind ends in its own Fail state, named after the kind; the key is the state's
# error name, the values the handler error types routed to it.
FAILURE_KINDS: dict[str, list[str]] = {
    "InvalidInput": ["InvalidInput"],
    "ImageNotFound": ["ImageNotFound"],
    "InvalidImage": ["InvalidImage"],
    "ImageTooLarge": ["ImageTooLarge"],
    "EndpointError": ["EndpointError", "EndpointUnavailable", "EndpointBusy"],
    "LowConfidence": ["LowConfidence"],
}
FAILURES_BY_STEP = {
    SERIALIZE_STEP: ["InvalidInput", "ImageNotFound", "InvalidImage", "ImageTooLarge"],
    CLASSIFY_STEP: ["InvalidInput", "EndpointError"],
    FILTER_STEP: ["InvalidInput", "LowConfidence"],
}
# The step whose function has a reserved concurrency sized to the endpoint's capacity.
THROTTLED_STEP = CLASSIFY_STEP
UNEXPECTED_FAILURE = "UnexpectedError"
SUCCEEDED_STATE = "Classified"


@dataclass(frozen=True)
class ClassificationFunctions:
    """The function each classification step invokes: the workflow's, which the batch mode
    invokes too and the monitoring stack watches."""

    serialize: PythonLambda
    classify: PythonLambda
    filter: PythonLambda

    def by_step(self) -> dict[str, PythonLambda]:
        """Each function by the name of its step (its construct is ``<step>Function``)."""
        return {
            SERIALIZE_STEP: self.serialize,
            CLASSIFY_STEP: self.classify,
            FILTER_STEP: self.filter,
        }

    def for_chain(self) -> dict[str, lambda_.IFunction]:
        """What ``classification_chain`` takes: each step's Lambda function by step name."""
        return {step: function.function for step, function in self.by_step().items()}


def classification_chain(
    scope: Construct,
    functions: Mapping[str, lambda_.IFunction],
    capacity_retry_minutes: int = CAPACITY_RETRY_MINUTES,
) -> sfn.Chain:
    """SerializeImage -> ClassifyImage -> FilterInferences -> Classified, each failure kind
    caught into its Fail state; ``functions`` maps each step name to its function.
    ``capacity_retry_minutes``: the mean total wait of classify's capacity retrier.

    The states are created in ``scope``: one state machine's states per scope.
    """
    failures = {
        kind: sfn.Fail(scope, kind, error=kind, cause_path="$.error.Cause")
        for kind in FAILURE_KINDS
    }
    # Anything else (a Lambda crash, a timeout) keeps its own error name.
    unexpected = sfn.Fail(
        scope, UNEXPECTED_FAILURE, error_path="$.error.Error", cause_path="$.error.Cause"
    )

    def step(name: str) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            scope,
            name,
            lambda_function=functions[name],
            payload_response_only=True,
            retry_on_service_exceptions=False,
        )
        if name == THROTTLED_STEP:
            # A burst meets its reserved concurrency (Lambda throttles) and the endpoint's
            # capacity (throttling, 429, 503, timeouts: EndpointBusy): wait for autoscaling
            # to add instances, one budget for both. Step Functions takes the first retrier
            # that matches, so this one goes first.
            task.add_retry(
                errors=CAPACITY_ERRORS,
                interval=Duration.seconds(CAPACITY_RETRY_INTERVAL_SECONDS),
                max_attempts=capacity_retry_attempts(capacity_retry_minutes),
                backoff_rate=2,
                max_delay=Duration.seconds(CAPACITY_RETRY_MAX_DELAY_SECONDS),
                jitter_strategy=sfn.JitterType.FULL,
            )
            task.add_retry(
                errors=ENDPOINT_RETRY_ERRORS,
                interval=Duration.seconds(ENDPOINT_RETRY_INTERVAL_SECONDS),
                max_attempts=ENDPOINT_RETRY_ATTEMPTS,
                backoff_rate=2,
                max_delay=Duration.seconds(ENDPOINT_RETRY_MAX_DELAY_SECONDS),
                jitter_strategy=sfn.JitterType.FULL,
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
    for task, (_, kinds) in zip(
        (serialize, classify, filter_), FAILURES_BY_STEP.items(), strict=True
    ):
        for kind in kinds:
            task.add_catch(failures[kind], errors=FAILURE_KINDS[kind], result_path="$.error")
        task.add_catch(unexpected, errors=["States.ALL"], result_path="$.error")

    return serialize.next(classify).next(filter_).next(sfn.Succeed(scope, SUCCEEDED_STATE))
