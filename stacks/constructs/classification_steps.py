"""The three classification steps with their retries and failure routes, for any state machine.

The event-driven workflow runs them once per upload; the batch mode runs them once per object
of a prefix, inside a Distributed Map. Both get the same states, so an image ends the same way
in either.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

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
# The step whose function has a reserved concurrency sized to the endpoint's capacity.
THROTTLED_STEP = "ClassifyImage"
UNEXPECTED_FAILURE = "UnexpectedError"
SUCCEEDED_STATE = "Classified"


def classification_chain(scope: Construct, functions: Mapping[str, lambda_.IFunction]) -> sfn.Chain:
    """SerializeImage -> ClassifyImage -> FilterInferences -> Classified, each failure kind
    caught into its Fail state; ``functions`` maps each step name to its function.

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
            # Its reserved concurrency throttles a burst on purpose: wait it out (up to about
            # two minutes) instead of failing after the few seconds of the generic retry.
            # Step Functions takes the first retrier that matches, so this one goes first.
            task.add_retry(
                errors=["Lambda.TooManyRequestsException"],
                interval=Duration.seconds(1),
                max_attempts=8,
                backoff_rate=2,
                max_delay=Duration.seconds(30),
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

    return serialize.next(classify).next(filter_).next(sfn.Succeed(scope, SUCCEEDED_STATE))
