"""Bursts: the capacity model, the autoscaling simulator, a reduced burst and the redrive.

The reduced burst is bench/burst.py's with 200 uploads (4 photos each), more than one instance
serves in a simulated minute: with the template's capacity retrier none fails, with today's
some do.
The model and the simulator are checked on a hand-driven clock.
"""

import argparse
import json
from types import SimpleNamespace

import boto3
import pytest

from bench.burst import run_policy, todays_policy
from emulator.capacity import ALARM_DATAPOINTS, Autoscaler, EndpointCapacity, ScalingRule
from emulator.endpoint import Fault
from emulator.redrive import is_capacity_failure, redrive
from emulator.sim_clock import SimClock, compressed_retry_waits
from tests.robustness import inputs
from tests.robustness.support import put, running_workflow

RULE = ScalingRule(
    min_capacity=1, max_capacity=4, target_per_minute=1500, scale_out_cooldown_seconds=60
)


class HandClock:
    """A clock that moves only when told to."""

    def __init__(self):
        self.seconds = 0.0

    def now(self):
        return self.seconds

    def sleep(self, seconds):
        pass


def test_the_fleet_serves_its_concurrency_and_throttles_beyond_it():
    clock = HandClock()
    capacity = EndpointCapacity(clock, concurrency=5, service_seconds=2)
    assert [capacity.admit() for _ in range(5)] == [None] * 5
    assert capacity.admit() == Fault.throttling()
    capacity.add_instances(1)
    assert capacity.admit() is None and capacity.peak_in_flight == 6
    clock.seconds = 2.0  # the first six are served
    assert [capacity.admit() for _ in range(10)] == [None] * 10
    assert capacity.throttled == 1 and capacity.served_by_minute == {0: 16}


def saturated(capacity, minute, per_instance=150):
    capacity.served_by_minute[minute] = per_instance * capacity.instances


def test_target_tracking_waits_for_three_datapoints_then_the_start_up():
    capacity = EndpointCapacity(HandClock(), concurrency=5, service_seconds=2)
    # Each upload stands for 20 invocations: 150 a minute is 3,000, twice the target.
    scaler = Autoscaler(capacity, RULE, weight=20)
    for minute in range(ALARM_DATAPOINTS - 1):
        saturated(capacity, minute)
        scaler.tick(minute, (minute + 1) * 60)
    assert scaler._pending is None
    saturated(capacity, 2)
    scaler.tick(2, 180)  # the alarm: desired = ceil(1 x 3000 / 1500) = 2
    for minute in range(3, 8):
        saturated(capacity, minute)
        scaler.tick(minute, (minute + 1) * 60)
    assert scaler.history == [(0.0, 1), (8.0, 2)]  # 3-minute alarm + 5-minute start-up
    for minute in range(8, 20):
        saturated(capacity, minute)
        scaler.tick(minute, (minute + 1) * 60)
    # Still above target after the 1-minute cooldown: 2 -> 4 (the maximum), 5 minutes later.
    assert scaler.history == [(0.0, 1), (8.0, 2), (14.0, 4)]


def test_a_short_spike_does_not_scale():
    capacity = EndpointCapacity(HandClock(), concurrency=5, service_seconds=2)
    scaler = Autoscaler(capacity, RULE, weight=20)
    for minute, served in enumerate([150, 150, 10, 150, 150, 10, 0, 0, 0, 0]):
        capacity.served_by_minute[minute] = served
        scaler.tick(minute, (minute + 1) * 60)
    assert scaler.history == [(0.0, 1)] and scaler._pending is None


def test_the_compressed_clock_carries_moto_retrier_waits_and_gives_them_back():
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    clock = SimClock(600)
    with compressed_retry_waits(clock):
        assert retrier_decl.time.sleep == clock.sleep
    assert retrier_decl.time.sleep is __import__("time").sleep


def test_todays_policy_differs_only_in_the_classify_retriers():
    definition = {"States": {"ClassifyImage": {"Retry": [], "Next": "X"}, "Other": {"Retry": []}}}
    today = todays_policy(definition)
    assert today["States"]["Other"] == definition["States"]["Other"]
    retriers = today["States"]["ClassifyImage"]["Retry"]
    assert [r["MaxAttempts"] for r in retriers] == [8, 3, 4]
    # d0656bb's handler named every endpoint failure EndpointUnavailable: its 4 retries of
    # 2-20 s apply to both of today's names, capacity included.
    assert retriers[2]["ErrorEquals"] == ["EndpointUnavailable", "EndpointBusy"]
    assert not any("EndpointBusy" in r["ErrorEquals"] for r in retriers[:2])
    assert definition["States"]["ClassifyImage"]["Retry"] == []


@pytest.mark.e2e
def test_a_reduced_burst_fails_no_upload_where_todays_policy_fails_some(local_app):
    # 4 photos per upload: an instance serves 150 uploads a simulated minute at today's 10
    # photos a second, as 20 did at the earlier 50, so the burst keeps its proportions.
    options = argparse.Namespace(uploads=200, minute_seconds=10, photos_per_upload=4)
    bodies = [inputs.small_png(seed=seed) for seed in range(8)]
    report = run_policy(local_app.outdir, None, lambda definition: definition, bodies, options)

    assert report["failed"] == {}, report
    assert report["classified"] + report["low_confidence"] == 200
    # The burst filled classify's reserved concurrency (10) and went no further.
    assert report["peak_in_flight"] == 10
    today = run_policy(local_app.outdir, None, todays_policy, bodies, options)
    assert sum(today["failed"].values()) > 0, today
    assert today["peak_in_flight"] == 10


def test_only_capacity_failures_are_redriven():
    busy = json.dumps({"errorType": "EndpointBusy"})
    assert is_capacity_failure("EndpointError", busy)
    assert is_capacity_failure("Lambda.TooManyRequestsException", None)
    # A model's own 5xx or a dead endpoint is no matter of capacity.
    unavailable = json.dumps({"errorType": "EndpointUnavailable"})
    assert not is_capacity_failure("EndpointError", unavailable)
    assert not is_capacity_failure("EndpointError", json.dumps({"errorType": "EndpointError"}))
    assert not is_capacity_failure("InvalidImage", None)


@pytest.mark.e2e
def test_a_capacity_failure_is_redriven_from_its_recorded_input(local_app):
    with (
        compressed_retry_waits(SimClock(20)),
        running_workflow(local_app, THRESHOLD="0.5") as workflow,
    ):
        workflow.endpoint.inject(Fault.throttling(), times=None)
        _, throttled = put(workflow, inputs.small_png(seed=3), "incoming/redrive/photo.png")
        _, text = put(workflow, b"not an image", "incoming/redrive/notes.png")
        failed = [workflow.wait(arn, "", None) for arn in (throttled, text)]
        workflow.endpoint.clear_faults()
        workflow.endpoint.inject(Fault.model_error(500), times=None)
        _, broken = put(workflow, inputs.small_png(seed=4), "incoming/redrive/broken.png")
        failed.append(workflow.wait(broken, "", None))
        workflow.endpoint.clear_faults()
        sfn = boto3.client("stepfunctions", region_name=workflow.region)
        (again,) = redrive(sfn, workflow.spec.state_machine_arn)
        outcome = workflow.wait(again, "incoming/redrive/photo.png", None)
        recorded = SimpleNamespace(**sfn.describe_execution(executionArn=again))

    assert [o.error for o in failed] == ["EndpointError", "InvalidImage", "EndpointError"]
    # The throttled one waited for capacity; the model's 500 is not redriven.
    assert [json.loads(failed[n].cause)["errorType"] for n in (0, 2)] == [
        "EndpointBusy",
        "EndpointUnavailable",
    ]
    assert outcome.status == "SUCCEEDED", outcome.cause
    assert json.loads(recorded.input)["detail"]["object"]["key"] == "incoming/redrive/photo.png"
