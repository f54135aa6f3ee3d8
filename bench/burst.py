# ruff: noqa: E402  (the environment and sys.path are set before the imports they affect)
"""A burst of uploads at once, on a compressed clock, with the new retry policy and today's.

    python bench/burst.py [--uploads 2000] [--model RECORD] [--minute-seconds 60]
                          [--photos-per-upload 20]

One local workflow per policy, each starting from one endpoint instance that autoscaling may
grow to the template's maximum. All N uploads go in while the functions are held, then run
at once. What limits them is simulated (``emulator.capacity``), never this machine's CPU:
classify's reserved concurrency (Lambda throttles beyond it), the endpoint's requests in
flight per instance (``ThrottlingException`` beyond them) and target tracking's alarm and
instance start-up. Every wait (each request's service time, the retries' backoff, the
autoscaling minutes) runs on one clock (``emulator.sim_clock``), ``--minute-seconds`` real
seconds per simulated minute, and the output says so.

Two cores cannot run 50 images/s x the clock factor, so the simulated instance is smaller by
``--photos-per-upload``: each upload stands for that many photos (its classify call holds the
instance that many times 0.1 s), and each served upload counts that many invocations for the
autoscaling metric. What decides the outcome keeps its real proportion: the burst against what
the fleet serves while autoscaling adds instances, the Lambda concurrency against the
endpoint's, and every wait. "Today" is the retry policy of main at d0656bb (whose
EndpointUnavailable retrier stands for both of today's EndpointUnavailable and EndpointBusy);
"new" is the synthesized template's.

The last line is one JSON object: ``uploads``, ``classified``, ``low_confidence``, ``failed``
(by error), ``drain_minutes`` (simulated, from the burst until the last execution ended),
``peak_in_flight`` (classify calls in flight at once) and ``today`` with the same fields.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the local mode sets it, before torch

import argparse
import copy
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.load import images
from bench.options import add_cdk_out, add_model_argument, bench_parser, results_stdout
from emulator.capacity import Autoscaler, EndpointCapacity, ScalingRule, reserved_concurrency
from emulator.sim_clock import SimClock, compressed_retry_waits
from stacks.config import AUTOSCALING_SAFETY_FACTOR

CLASSIFY_STEP = "ClassifyImage"
# ClassifyImage's retriers on main at d0656bb, before the capacity retrier.
TODAYS_CLASSIFY_RETRY = [
    {
        "ErrorEquals": ["Lambda.TooManyRequestsException"],
        "IntervalSeconds": 1,
        "MaxAttempts": 8,
        "BackoffRate": 2,
        "MaxDelaySeconds": 30,
        "JitterStrategy": "FULL",
    },
    {
        "ErrorEquals": [
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException",
            "Lambda.ClientExecutionTimeoutException",
        ],
        "IntervalSeconds": 1,
        "MaxAttempts": 3,
        "BackoffRate": 2,
        "JitterStrategy": "FULL",
    },
    {
        # d0656bb's handler named both EndpointUnavailable; today's handler splits off
        # EndpointBusy (capacity), so the old policy retries both names alike.
        "ErrorEquals": ["EndpointUnavailable", "EndpointBusy"],
        "IntervalSeconds": 2,
        "MaxAttempts": 4,
        "BackoffRate": 2,
        "MaxDelaySeconds": 20,
        "JitterStrategy": "FULL",
    },
]
# Sandbox processes per function on this machine (a bound on processes, not on Lambda).
MAX_SANDBOXES = 4


def todays_policy(definition: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``definition`` whose classify step retries as main's did."""
    today = copy.deepcopy(definition)
    today["States"][CLASSIFY_STEP]["Retry"] = copy.deepcopy(TODAYS_CLASSIFY_RETRY)
    return today


def classify_function(workflow: Any) -> Any:
    return workflow.spec.classify


def classify_name(workflow: Any) -> str:
    return classify_function(workflow).name


def endpoint_capacity(
    workflow: Any, rule: ScalingRule, clock: SimClock, photos_per_upload: float
) -> EndpointCapacity:
    """The fleet as the template sizes it: classify's reserved concurrency spread over the
    largest fleet per instance, each upload held for its photos at the saturation rate (twice
    the target); ``rule.min_capacity`` instances to start with."""
    reserved = reserved_concurrency(workflow.spec.assembly)[classify_name(workflow)]
    concurrency = max(1, reserved // rule.max_capacity)
    saturation_per_second = rule.target_per_minute / 60 / AUTOSCALING_SAFETY_FACTOR
    return EndpointCapacity(
        clock,
        concurrency=concurrency,
        service_seconds=concurrency * photos_per_upload / saturation_per_second,
        instances=rule.min_capacity,
    )


def run_burst(
    workflow: Any, bodies: list[bytes], uploads: int, clock_factor: float, photos_per_upload: float
) -> dict[str, Any]:
    """Upload ``uploads`` objects at once through a started LocalWorkflow; report outcomes."""
    import boto3

    rule = ScalingRule.from_assembly(workflow.spec.assembly)
    function = classify_function(workflow)
    classify = function.name
    reserved = reserved_concurrency(workflow.spec.assembly)[classify]
    # Start classify's sandboxes first: cold starts are this machine's cost, not the burst's.
    # Each starts as Lambda starts one, with the function's environment (Powertools reads its
    # metrics namespace at import).
    with ThreadPoolExecutor(reserved) as pool:
        warm = (function.name, {}, function.environment, function.arn)
        list(pool.map(lambda _: workflow.runtime.call(*warm), range(reserved)))
    workflow.runtime.concurrency(classify, reset=True)
    keys = [f"incoming/burst/{index:05d}.png" for index in range(uploads)]
    sfn = boto3.client("stepfunctions", region_name=workflow.region)
    with ExitStack() as running:
        with workflow.runtime.held(), ThreadPoolExecutor(8) as pool:
            uploaded = [
                pool.submit(workflow.upload, bodies[index % len(bodies)], key)
                for index, key in enumerate(keys)
            ]
            for upload in uploaded:
                upload.result()
            # The clock starts as the held executions are let go, every wait on it from then.
            clock = SimClock(clock_factor)
            running.enter_context(compressed_retry_waits(clock))
            capacity = endpoint_capacity(workflow, rule, clock, photos_per_upload)
            autoscaler = Autoscaler(capacity, rule, weight=photos_per_upload).start()
            running.callback(autoscaler.stop)
            workflow.endpoint.capacity = capacity
            running.callback(setattr, workflow.endpoint, "capacity", None)
            began = time.time()
        while sfn.list_executions(
            stateMachineArn=workflow.spec.state_machine_arn, statusFilter="RUNNING"
        )["executions"]:
            time.sleep(0.5)
    outcomes: Counter[str] = Counter()
    last_stop = began
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=workflow.spec.state_machine_arn
    ):
        for execution in page["executions"]:
            last_stop = max(last_stop, execution["stopDate"].timestamp())
            if execution["status"] == "SUCCEEDED":
                outcomes["classified"] += 1
            else:
                described = sfn.describe_execution(executionArn=execution["executionArn"])
                outcomes[described.get("error") or execution["status"]] += 1
    return {
        "uploads": uploads,
        "classified": outcomes.pop("classified", 0),
        "low_confidence": outcomes.pop("LowConfidence", 0),
        "failed": dict(sorted(outcomes.items())),
        "drain_minutes": round((last_stop - began) * clock_factor / 60, 1),
        "peak_in_flight": workflow.runtime.concurrency(classify)["peak_in_flight"],
        "instances": [[round(minute, 1), count] for minute, count in autoscaler.history],
    }


def run_policy(
    assembly: Path,
    record: Path,
    policy: Callable[[dict[str, Any]], dict[str, Any]],
    bodies: list[bytes],
    args: argparse.Namespace,
) -> dict[str, Any]:
    from emulator.workflow import LocalWorkflow

    workflow = LocalWorkflow(assembly, record, max_sandboxes=MAX_SANDBOXES, execution_timeout=3600)
    # The template's waits, not shortened: they run on the compressed clock instead.
    workflow.definition = policy(workflow.spec.definition)
    with workflow, results_stdout(Path(os.devnull)):
        return run_burst(
            workflow, bodies, args.uploads, 60 / args.minute_seconds, args.photos_per_upload
        )


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--uploads", type=int, default=2000, help="uploads at once (2000)")
    add_model_argument(parser)
    parser.add_argument(
        "--minute-seconds", type=float, default=60, help="real seconds per simulated minute (60)"
    )
    parser.add_argument(
        "--photos-per-upload", type=float, default=20, help="photos one upload stands for (20)"
    )
    add_cdk_out(parser)
    args = parser.parse_args(argv)
    logging.getLogger("moto").setLevel(logging.CRITICAL)

    from emulator.assembly import cached_assembly, model_record_for

    workdir = Path(tempfile.mkdtemp(prefix="burst-"))
    model = args.model
    if not model.exists():
        from tests.robustness.support import untrained_model_archive

        print(f"no model at {model}: serving an untrained one (outcomes, not accuracy)")
        model = untrained_model_archive(workdir)
    record = model_record_for(model, workdir)
    assembly = args.cdk_out or cached_assembly(record)
    bodies = images(None)
    new = run_policy(assembly, record, lambda definition: definition, bodies, args)
    today = run_policy(assembly, record, todays_policy, bodies, args)
    rate = 60 / args.minute_seconds
    print(
        f"clock: 1 simulated minute = {args.minute_seconds:g} real seconds (x{rate:g}); "
        f"each upload stands for {args.photos_per_upload:g} photos"
    )
    for name, report in (("new", new), ("today", today)):
        steps = ", ".join(f"{count} at minute {minute:g}" for minute, count in report["instances"])
        print(f"{name}: instances in service {steps}")
        report.pop("instances")
    print(json.dumps({**new, "today": today}))
    return 0 if not new["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
