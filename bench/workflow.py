# ruff: noqa: E402  (the environment and sys.path are set before the imports they affect)
"""Local workflow executions vs the three handlers called in sequence, side by side.

    python bench/workflow.py [--model build/model/model-record.json] [--executions 100]

One process, one local endpoint, one moto S3: each round takes a test PNG already in the
bucket and runs it (a) as a Step Functions execution of the synthesized definition on moto's
interpreter (start_execution -> SUCCEEDED, Lambda invocations dispatched to the handler files)
and (b) as direct calls of the same three handlers with the same environment and context
(serialize -> classify -> filter), alternating. Prints per-execution p50/p99, their ratio
(target <= 2) and executions/s; then the time from an upload under incoming/ to the outcome.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the local mode sets it, before torch

import logging
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.endpoint import LatencyTable, test_images
from bench.options import add_log, add_rounds, add_workflow_options, bench_parser, results_stdout
from emulator.assembly import cached_assembly, model_record_for
from emulator.workflow import LocalWorkflow

LATENCIES = LatencyTable(width=34, decimals=1, ratio="workflow/direct", target=2)


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    add_workflow_options(parser)
    add_rounds(parser, "--executions", 100, warmup=10)
    add_log(parser)
    args = parser.parse_args(argv)
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # its per-failure error logs

    bodies = test_images(args.model, args.images)
    workdir = Path(os.environ.get("TMPDIR", "/tmp"))
    record = model_record_for(args.model, workdir)
    assembly = args.cdk_out or cached_assembly(record)
    with results_stdout(args.log):
        results = run(assembly, record, bodies, args.executions, args.warmup)
    workflow_ms, direct_ms, upload_ms, statuses = results
    print(f"executions: {args.executions} per path ({statuses})")
    LATENCIES.show(
        ("3 handlers called directly", direct_ms), ("local workflow execution", workflow_ms)
    )
    print(
        f"executions/s: workflow {1000 / statistics.mean(workflow_ms):.1f}, direct "
        f"{1000 / statistics.mean(direct_ms):.1f} (sequential)"
    )
    print(f"upload under incoming/ -> outcome: p50 {statistics.median(upload_ms):.1f} ms")
    return 0


def task_chain(workflow: LocalWorkflow) -> list:
    """The functions of the definition's Task states, from StartAt along Next."""
    by_arn = {function.arn: function for function in workflow.spec.functions}
    states = workflow.spec.definition["States"]
    chain, name = [], workflow.spec.definition["StartAt"]
    while name is not None:
        state = states[name]
        if state["Type"] == "Task":
            chain.append(by_arn[state["Resource"]])
        name = state.get("Next")
    return chain


def run(
    assembly: Path, record: Path, bodies: list[bytes], executions: int, warmup: int
) -> tuple[list[float], list[float], list[float], dict[str, int]]:
    workflow_ms: list[float] = []
    direct_ms: list[float] = []
    upload_ms: list[float] = []
    statuses: dict[str, int] = {}
    with LocalWorkflow(assembly, record) as workflow:
        order = task_chain(workflow)
        keys = []
        for index, body in enumerate(bodies):
            # Under batch/, which serialize's role may read (IAM is enforced) and which starts
            # no execution (the rule starts on incoming/ only).
            key = f"batch/bench/{index:03d}.png"
            workflow.upload(body, key)
            keys.append(key)

        def direct(key: str) -> None:
            event: object = {"s3_bucket": workflow.bucket, "s3_key": key}
            for function in order:
                call = workflow.runtime.call(
                    function.name, event, function.environment, function.arn
                )
                if call.error_type is not None:
                    return
                event = call.result

        for index in range(warmup + executions):
            key = keys[index % len(keys)]
            started = time.perf_counter()
            outcome = workflow.run({"s3_bucket": workflow.bucket, "s3_key": key})
            elapsed = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            direct(key)
            direct_elapsed = (time.perf_counter() - started) * 1000
            if index >= warmup:
                workflow_ms.append(elapsed)
                direct_ms.append(direct_elapsed)
                label = outcome.status if outcome.status == "SUCCEEDED" else outcome.error
                statuses[label] = statuses.get(label, 0) + 1
        for index in range(min(20, executions)):
            outcome = workflow.classify_bytes(
                bodies[index % len(bodies)], f"incoming/bench-{index:03d}.png"
            )
            upload_ms.append(outcome.duration_ms)
    return workflow_ms, direct_ms, upload_ms, statuses


if __name__ == "__main__":
    sys.exit(main())
