"""Endpoint faults through the whole local workflow: retried when transient, named when not.

Capacity faults (SageMaker's own 503, throttling, a throttled container's 429, an answer slower
than the classify function's read timeout) are EndpointBusy, waited out by the capacity
retrier; a model's own 500 and the endpoint going down are EndpointUnavailable, retried
briefly; a malformed body and a client error fail at once. tests/emulator also covers a model
500 retried twice then succeeding, and a persistent one ending in EndpointError.
The classify function's ENDPOINT_READ_TIMEOUT_SECONDS is lowered to 0.5 s locally (the
emulator sets function environment on top of the template's), retry waits are capped at 1 s
and run on a clock 20 times faster (the capacity retrier makes 34 of them).
"""

import json
import time

import pytest

from emulator.endpoint import Fault
from emulator.sim_clock import SimClock, compressed_retry_waits
from stacks.config import CAPACITY_RETRY_MINUTES, capacity_retry_attempts
from stacks.constructs.classification_steps import ENDPOINT_RETRY_ATTEMPTS
from tests.robustness import inputs
from tests.robustness.support import (
    execution_statuses,
    invocations_of,
    put,
    running_workflow,
)

pytestmark = pytest.mark.e2e

READ_TIMEOUT_SECONDS = 0.5
SLOW_SECONDS = 1.5
# One attempt + MaxAttempts of the capacity retrier (Lambda throttles, EndpointBusy) ...
BUSY_ATTEMPTS = 1 + capacity_retry_attempts(CAPACITY_RETRY_MINUTES)
# ... and of the brief retrier of EndpointUnavailable.
UNAVAILABLE_ATTEMPTS = 1 + ENDPOINT_RETRY_ATTEMPTS
# The retries' waits (capped at 1 s locally) run on a clock this much faster than real time.
RETRY_CLOCK_FACTOR = 20
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@pytest.fixture(scope="module")
def workflow(local_app):
    with (
        compressed_retry_waits(SimClock(RETRY_CLOCK_FACTOR)),
        running_workflow(
            local_app, THRESHOLD="0.5", ENDPOINT_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT_SECONDS)
        ) as running,
    ):
        yield running


@pytest.fixture(autouse=True)
def healthy_endpoint_after_each_test(workflow):
    yield
    workflow.endpoint.clear_faults()
    workflow.endpoint.come_up()
    statuses = execution_statuses(workflow)
    started = {arn for arns in workflow.executions.values() for arn in arns}
    assert set(statuses) == started, "an execution moto ran was not started by an upload"
    assert {arn: s for arn, s in statuses.items() if s not in TERMINAL} == {}, "left running"


def classify_attempts(workflow, key):
    """The classify invocations of ``key`` (the only handler whose input has image_data)."""
    return [call.error_type for call in invocations_of(workflow, key) if "image_data" in call.event]


def upload(workflow, name, seed=0):
    key = f"incoming/faults/{name}-{seed}.png"
    _, execution = put(workflow, inputs.small_png(seed=seed), key)
    return key, execution


# name -> (fault, the error classify raises for it)
TRANSIENT = {
    "service-unavailable-503": (Fault.service_unavailable(), "EndpointBusy"),
    "throttling": (Fault.throttling(), "EndpointBusy"),
    "container-429": (Fault.model_error(429, "too many requests"), "EndpointBusy"),
    "slower-than-read-timeout": (Fault.slow(SLOW_SECONDS), "EndpointBusy"),
    "model-500": (Fault.model_error(500, "inference raised"), "EndpointUnavailable"),
}
ATTEMPTS = {"EndpointBusy": BUSY_ATTEMPTS, "EndpointUnavailable": UNAVAILABLE_ATTEMPTS}


def test_the_synthesized_retriers_back_off_with_jitter(workflow):
    """The template's retriers (the local copy only caps the waits at 1 s)."""
    retriers = workflow.spec.definition["States"]["ClassifyImage"]["Retry"]
    for error, attempts in ATTEMPTS.items():
        (retrier,) = [r for r in retriers if error in r["ErrorEquals"]]
        assert retrier["MaxAttempts"] == attempts - 1
        assert retrier["BackoffRate"] > 1 and retrier["JitterStrategy"] == "FULL"
        assert retrier["IntervalSeconds"] >= 1
    assert UNAVAILABLE_ATTEMPTS < BUSY_ATTEMPTS / 5


@pytest.mark.parametrize("name", list(TRANSIENT))
def test_a_transient_fault_is_retried_and_succeeds_when_it_clears(workflow, name):
    fault, error = TRANSIENT[name]
    before = sum(workflow.endpoint.stats.values())
    workflow.endpoint.inject(fault, times=2)
    key, execution = upload(workflow, name)
    outcome = workflow.wait(execution, key, None)

    assert outcome.status == "SUCCEEDED", outcome.cause
    assert classify_attempts(workflow, key) == [error, error, None]
    failures = [
        e["lambdaFunctionFailedEventDetails"]["error"]
        for e in workflow.history(execution)
        if e["type"] == "LambdaFunctionFailed"
    ]
    assert failures == [error, error]
    assert sum(workflow.endpoint.stats.values()) - before >= 3  # two faults, one answer


@pytest.mark.parametrize("name", [*TRANSIENT, "endpoint-down"])
def test_a_persistent_fault_ends_in_endpoint_error_after_every_retry(workflow, name):
    """Capacity is waited out (35 attempts); a model's 500 or a dead endpoint is not (5)."""
    if name == "endpoint-down":
        workflow.endpoint.go_down()
        error = "EndpointUnavailable"
    else:
        fault, error = TRANSIENT[name]
        workflow.endpoint.inject(fault, times=None)
    key, execution = upload(workflow, name, seed=1)
    outcome = workflow.wait(execution, key, None)

    assert outcome.status == "FAILED" and outcome.error == "EndpointError"
    assert json.loads(outcome.cause)["errorType"] == error
    assert classify_attempts(workflow, key) == [error] * ATTEMPTS[error]
    fail_states = [
        e["stateEnteredEventDetails"]["name"]
        for e in workflow.history(execution)
        if e["type"] == "FailStateEntered"
    ]
    assert fail_states == ["EndpointError"]


@pytest.mark.parametrize(
    "fault",
    [Fault.malformed_body(), Fault.model_error(400, "cannot read this")],
    ids=["malformed-body", "client-error-400"],
)
def test_a_permanent_fault_fails_at_once_without_retries(workflow, fault):
    workflow.endpoint.inject(fault, times=1)
    key, execution = upload(workflow, fault.kind.value, seed=2)
    outcome = workflow.wait(execution, key, None)

    assert outcome.status == "FAILED" and outcome.error == "EndpointError"
    assert json.loads(outcome.cause)["errorType"] == "EndpointError"
    assert classify_attempts(workflow, key) == ["EndpointError"]


def wait_for(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.002)


def test_the_endpoint_going_down_mid_run_leaves_every_execution_accounted_for(workflow):
    first = upload(workflow, "mid-run", seed=10)
    wait_for(lambda: classify_attempts(workflow, first[0])[-1:] == [None], "a classification")
    workflow.endpoint.go_down()
    keys = [first] + [upload(workflow, "mid-run", seed=seed) for seed in range(11, 16)]
    outcomes = [workflow.wait(execution, key, None) for key, execution in keys]

    results = [o.status if o.status == "SUCCEEDED" else o.error for o in outcomes]
    assert sorted(results) == ["EndpointError"] * 5 + ["SUCCEEDED"], results
    for outcome in outcomes:
        attempts = classify_attempts(workflow, outcome.s3_key)
        if outcome.status == "SUCCEEDED":
            assert attempts[-1] is None
        else:
            assert attempts == ["EndpointUnavailable"] * UNAVAILABLE_ATTEMPTS

    # Back up: an execution caught in its (four, brief) retries recovers. The next attempts
    # wait while the port reopens, so the retries cannot run out first.
    workflow.endpoint.go_down()
    key, execution = upload(workflow, "back-up", seed=20)
    wait_for(lambda: classify_attempts(workflow, key), "a failed attempt")
    with workflow.runtime.held():
        workflow.endpoint.come_up()
    outcome = workflow.wait(execution, key, None)
    assert outcome.status == "SUCCEEDED", outcome.cause
    attempts = classify_attempts(workflow, key)
    assert attempts[0] == "EndpointUnavailable" and attempts[-1] is None
