# ruff: noqa: E402  (the environment and sys.path are set before the imports they affect)
"""A bounded load run through the local workflow: every upload, exactly one outcome.

    python bench/load.py [--uploads 2000] [--concurrency 2] [--max-seconds 900]
                         [--model build/model/model-record.json] [--cdk-out DIR]

One process, loopback only: moto S3 and Step Functions in-process, the local endpoint on
127.0.0.1. ``--concurrency`` workers each upload an image under incoming/ (the upload starts
the execution, as the EventBridge rule does) and wait for its execution to end. Every 25th
upload is not an image, so named failures are part of the mix. When the run ends (or
``--max-seconds`` passes: nothing new is uploaded after it), the uploads are reconciled
against every execution moto ran: an upload with no execution, or whose execution is not
terminal, is lost; a second execution for one upload, or an execution no upload started, is
duplicated. Prints executions/s, p50/p99 latency from upload to outcome, the outcome mix and
lost/duplicated (must be 0/0; the exit code is 1 otherwise).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the local mode sets it, before torch

import io
import logging
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.endpoint import percentile
from bench.options import add_log, add_workflow_options, bench_parser, results_stdout
from emulator.errors import WorkflowError

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
NOT_AN_IMAGE = b"this upload is a text file, not a photo\n"
BAD_INPUT_EVERY = 25


@dataclass
class LoadReport:
    uploads: int
    concurrency: int
    wall_seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)  # classified, LowConfidence, ...
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    not_uploaded: int = 0

    @property
    def executions_per_second(self) -> float:
        return len(self.latencies_ms) / self.wall_seconds if self.wall_seconds else 0.0

    def percentile(self, fraction: float) -> float:
        return percentile(self.latencies_ms, fraction) if self.latencies_ms else float("nan")

    def summary(self) -> str:
        mix = ", ".join(f"{name} {count}" for name, count in sorted(self.outcomes.items()))
        late = f"; not uploaded before the deadline: {self.not_uploaded}" * bool(self.not_uploaded)
        return "\n".join(
            [
                f"uploads: {self.uploads} at concurrency {self.concurrency} "
                f"in {self.wall_seconds:.1f} s",
                f"executions/s: {self.executions_per_second:.1f}",
                f"latency upload -> outcome: p50 {self.percentile(0.5):.0f} ms, "
                f"p99 {self.percentile(0.99):.0f} ms, "
                f"mean {statistics.fmean(self.latencies_ms or [0]):.0f} ms",
                f"outcomes: {mix}",
                f"lost: {len(self.lost)}, duplicated: {len(self.duplicated)} (must be 0/0){late}",
            ]
        )


def outcome_kind(status: str, error: str | None) -> str:
    """classified, LowConfidence or the named failure (the Fail state's error)."""
    if status == "SUCCEEDED":
        return "classified"
    return error or status


def run_load(
    workflow: Any,
    bodies: list[bytes],
    uploads: int,
    concurrency: int,
    max_seconds: float,
    key_prefix: str = "incoming/load/",
) -> LoadReport:
    """Upload ``uploads`` objects through ``workflow`` (a started LocalWorkflow), reconcile."""
    host = urlparse(workflow.endpoint.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"the local endpoint listens on {host}: loopback only")
    keys = [f"{key_prefix}{index:05d}.png" for index in range(uploads)]
    deadline = time.monotonic() + max_seconds
    lock = threading.Lock()
    waited: dict[str, list[str]] = {}
    report = LoadReport(uploads=uploads, concurrency=concurrency, wall_seconds=0.0)

    def one(index: int) -> None:
        if time.monotonic() > deadline:
            with lock:
                report.not_uploaded += 1
            return
        key = keys[index]
        body = NOT_AN_IMAGE if index % BAD_INPUT_EVERY == BAD_INPUT_EVERY - 1 else None
        body = body or bodies[index % len(bodies)]
        started = time.perf_counter()
        executions = workflow.upload(body, key)
        for execution in executions:
            try:
                outcome = workflow.wait(execution, key, None, started)
            except WorkflowError:
                continue  # still running at its timeout: reconciled below as lost
            with lock:
                waited.setdefault(key, []).append(outcome.status)
                report.latencies_ms.append(outcome.duration_ms)
                report.outcomes[outcome_kind(outcome.status, outcome.error)] += 1

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency, thread_name_prefix="uploader") as pool:
        list(pool.map(one, range(uploads)))
    report.wall_seconds = time.perf_counter() - began

    statuses = execution_statuses(workflow)
    started_by_upload: set[str] = set()
    for key in keys:
        executions = workflow.executions.get(f"{workflow.bucket}/{key}", [])
        started_by_upload.update(executions)
        if not executions or any(statuses.get(arn) not in TERMINAL for arn in executions):
            report.lost.append(key)
        elif len(executions) > 1 or len(waited.get(key, [])) != 1:
            report.duplicated.append(key)
    report.duplicated += sorted(set(statuses) - started_by_upload)
    return report


def execution_statuses(workflow: Any) -> dict[str, str]:
    """Every execution moto ran for the state machine, with its status."""
    import boto3

    client = boto3.client("stepfunctions", region_name=workflow.region)
    return {
        execution["executionArn"]: execution["status"]
        for page in client.get_paginator("list_executions").paginate(
            stateMachineArn=workflow.spec.state_machine_arn
        )
        for execution in page["executions"]
    }


def images(folder: Path | None) -> list[bytes]:
    """PNG test images from ``folder`` (or the staged test split), else generated ones."""
    folders = [folder] if folder else [REPO_ROOT / "build" / "data" / "test"]
    for candidate in folders:
        files = sorted(candidate.rglob("*.png")) if candidate.is_dir() else []
        if files:
            return [path.read_bytes() for path in files[:200]]
    import numpy as np
    from PIL import Image

    generated = []
    rng = np.random.default_rng(0)
    for _ in range(50):
        buffer = io.BytesIO()
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(buffer, format="PNG")
        generated.append(buffer.getvalue())
    return generated


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--uploads", type=int, default=2000, help="uploads (default: 2000)")
    parser.add_argument("--concurrency", type=int, default=2, help="uploads in flight (default: 2)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=900.0,
        help="upload nothing new after this (default: 900); what is left counts as lost",
    )
    add_workflow_options(parser)
    add_log(parser)
    args = parser.parse_args(argv)
    logging.getLogger("moto").setLevel(logging.CRITICAL)

    from emulator.assembly import cached_assembly, model_record_for
    from emulator.workflow import LocalWorkflow

    if not args.model.exists():
        raise SystemExit(f"no model at {args.model}: train one (make demo) or pass --model")
    bodies = images(args.images)
    record = model_record_for(args.model, Path(os.environ.get("TMPDIR", "/tmp")))
    assembly = args.cdk_out or cached_assembly(record)
    with LocalWorkflow(assembly, record) as workflow, results_stdout(args.log):
        report = run_load(workflow, bodies, args.uploads, args.concurrency, args.max_seconds)
    print(report.summary())
    return 0 if not report.lost and not report.duplicated and not report.not_uploaded else 1


if __name__ == "__main__":
    sys.exit(main())
