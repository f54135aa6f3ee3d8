"""What limits a burst in the local mode: the endpoint's capacity and its autoscaling.

- ``EndpointCapacity``: the fleet as SageMaker runs it, ``concurrency`` requests in flight per
  instance in service, each held ``service_seconds`` on the simulated clock; a request beyond
  that gets ``ThrottlingException`` at once, as SageMaker answers an endpoint over its
  capacity. Set it as ``LocalEndpoint.capacity``.
- ``Autoscaler``: target tracking on ``SageMakerVariantInvocationsPerInstance`` as the template
  configures it (``ScalingRule.from_assembly``): every simulated minute one datapoint, the
  invocations served that minute per instance in service (``weight`` invocations for each
  local one); when the last ``ALARM_DATAPOINTS`` are all above the target, desired capacity is
  ``ceil(in service x datapoint / target)``, at most the maximum; the new instances serve after
  ``startup_seconds``; the next scale-out waits for the cooldown after that. No scale-in: a
  burst ends before the 15-minute scale-in alarm would fire.
- ``reserved_concurrency``: each function's ``ReservedConcurrentExecutions`` in the template.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from emulator.endpoint import Fault
from emulator.sim_clock import SimClock

# Application Auto Scaling's target-tracking high alarm: 3 consecutive one-minute datapoints.
ALARM_DATAPOINTS = 3
# A new ml.c5.large until it serves (an assumption: docs/scale.md says where it comes from).
INSTANCE_STARTUP_SECONDS = 300


def reserved_concurrency(assembly: Any) -> dict[str, int]:
    """Function name -> reserved concurrency, for the functions that have one."""
    return {
        assembly.physical_name(stack, logical_id): int(
            resource["Properties"]["ReservedConcurrentExecutions"]
        )
        for stack, logical_id, resource in assembly.resources("AWS::Lambda::Function")
        if "ReservedConcurrentExecutions" in resource.get("Properties", {})
    }


@dataclass(frozen=True)
class ScalingRule:
    """The endpoint variant's scalable target and target-tracking policy."""

    min_capacity: int
    max_capacity: int
    target_per_minute: float
    scale_out_cooldown_seconds: float
    startup_seconds: float = INSTANCE_STARTUP_SECONDS

    @classmethod
    def from_assembly(cls, assembly: Any) -> ScalingRule:
        _, _, target = assembly.single("AWS::ApplicationAutoScaling::ScalableTarget")
        _, _, policy = assembly.single("AWS::ApplicationAutoScaling::ScalingPolicy")
        tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        return cls(
            min_capacity=int(target["Properties"]["MinCapacity"]),
            max_capacity=int(target["Properties"]["MaxCapacity"]),
            target_per_minute=float(tracking["TargetValue"]),
            scale_out_cooldown_seconds=float(tracking.get("ScaleOutCooldown", 300)),
        )


@dataclass
class EndpointCapacity:
    """Requests in flight per instance; see module doc."""

    clock: SimClock
    concurrency: int
    service_seconds: float
    instances: int = 1
    served_by_minute: Counter[int] = field(default_factory=Counter)
    throttled: int = 0
    peak_in_flight: int = 0
    _busy_until: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self) -> Fault | None:
        """Serve a request (return after its service time) or refuse it with throttling."""
        with self._lock:
            now = self.clock.now()
            self._busy_until = [until for until in self._busy_until if until > now]
            if len(self._busy_until) >= self.instances * self.concurrency:
                self.throttled += 1
                return Fault.throttling()
            self._busy_until.append(now + self.service_seconds)
            self.peak_in_flight = max(self.peak_in_flight, len(self._busy_until))
            self.served_by_minute[int(now // 60)] += 1
        self.clock.sleep(self.service_seconds)
        return None

    def add_instances(self, count: int) -> None:
        with self._lock:
            self.instances += count


class Autoscaler:
    """Target tracking over ``capacity`` on its clock; ``start()``, then ``stop()``.

    ``history``: ``(simulated minute, instances in service)`` at every change.
    """

    def __init__(self, capacity: EndpointCapacity, rule: ScalingRule, weight: float = 1) -> None:
        self.capacity = capacity
        self.rule = rule
        self.weight = weight
        self.datapoints: list[float] = []
        self.history: list[tuple[float, int]] = [(0.0, capacity.instances)]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="autoscaler", daemon=True)
        self._pending: tuple[float, int] | None = None  # (in service at, instances)
        self._cooldown_until = 0.0

    def start(self) -> Autoscaler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        clock = self.capacity.clock
        minute = 0
        while not self._stopped.is_set():
            # Wake a little after each minute ends, in short real steps so stop() is prompt.
            while clock.now() < (minute + 1) * 60 and not self._stopped.is_set():
                clock.sleep(min(1.0, (minute + 1) * 60 - clock.now()))
                self._activate(clock.now())
            self.tick(minute, clock.now())
            minute += 1

    def tick(self, minute: int, now: float) -> None:
        """Close the datapoint of ``minute`` (per instance that served in it), put started
        instances in service, act on the alarm (public for tests)."""
        served = self.capacity.served_by_minute.get(minute, 0) * self.weight
        self.datapoints.append(served / self.capacity.instances)
        self._activate(now)
        recent = self.datapoints[-ALARM_DATAPOINTS:]
        alarm = len(recent) == ALARM_DATAPOINTS and min(recent) > self.rule.target_per_minute
        if not alarm or self._pending is not None or now < self._cooldown_until:
            return
        in_service = self.capacity.instances
        desired = math.ceil(in_service * recent[-1] / self.rule.target_per_minute)
        desired = min(desired, self.rule.max_capacity)
        if desired > in_service:
            self._pending = (now + self.rule.startup_seconds, desired - in_service)

    def _activate(self, now: float) -> None:
        """Put the pending instances in service once they have started."""
        if self._pending is not None and now >= self._pending[0]:
            self.capacity.add_instances(self._pending[1])
            self.history.append((now / 60, self.capacity.instances))
            self._cooldown_until = now + self.rule.scale_out_cooldown_seconds
            self._pending = None
