"""Batch mode in the local workflow: a prefix through the synthesized ``SconesBatch``.

``upload_batch`` puts files under a fresh ``batch/<run>/`` prefix (no EventBridge rule matches
it, so nothing else starts), ``run_batch`` starts the batch state machine with
``{"prefix": ...}`` and waits for it, then reads what the batch itself wrote to S3: the map
run's ``manifest.json`` and the result files it lists (``emulator.distributed_map`` writes
them as AWS does). ``BatchRun.outcomes`` turns those records into the lines ``classify``
prints.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from emulator.errors import WorkflowError
from emulator.workflow import TERMINAL, LocalWorkflow, Outcome
from stacks.names import BATCH_PREFIX

# The files' status when the batch ended before their item ran (not in any result file).
NOT_RUN = "NOT_RUN"


@dataclass
class BatchRun:
    """One execution of the batch state machine, and the results it wrote."""

    prefix: str
    execution_arn: str
    status: str
    error: str | None
    cause: str | None
    seconds: float
    map_run_arn: str | None = None
    map_run_status: str | None = None
    item_counts: dict[str, int] = field(default_factory=dict)
    manifest_key: str | None = None
    manifest: dict[str, Any] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)

    def outcomes(self, files: dict[str, str | None] | None = None) -> list[Outcome]:
        """One outcome per result record; with ``files`` (S3 key -> file as given), one per
        file, in that order, those with no record marked ``NOT_RUN``."""
        by_key: dict[str, Outcome] = {}
        for record in self.records:
            child_input = json.loads(record["Input"])
            key = child_input.get("s3_key", "")
            outcome = Outcome(file=None, s3_key=key, status=record["Status"])
            if record["Status"] == "SUCCEEDED":
                output = json.loads(record["Output"])
                outcome.label = output.get("label")
                outcome.confidence = output.get("confidence")
                outcome.inferences = output.get("inferences")
            else:
                outcome.error, outcome.cause = record.get("Error"), record.get("Cause")
            outcome.execution_arn = record["ExecutionArn"]
            outcome.duration_ms = (
                datetime.fromisoformat(record["StopDate"])
                - datetime.fromisoformat(record["StartDate"])
            ).total_seconds() * 1000
            if key in by_key:
                raise WorkflowError(f"the batch's results name {key} twice")
            by_key[key] = outcome
        if files is None:
            return list(by_key.values())
        outcomes = []
        for key, file in files.items():
            outcome = by_key.get(key) or Outcome(
                file=None,
                s3_key=key,
                status=NOT_RUN,
                cause=f"the batch ended ({self.error or self.status}) before this item ran",
            )
            outcome.file = file
            outcomes.append(outcome)
        return outcomes

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for record in self.records:
            kind = record["Status"] if record["Status"] == "SUCCEEDED" else record.get("Error")
            counts[str(kind)] = counts.get(str(kind), 0) + 1
        items = len(self.records)
        return {
            "prefix": self.prefix,
            "execution": self.status,
            "error": self.error,
            "map_run": self.map_run_status,
            "items": items,
            "outcomes": dict(sorted(counts.items())),
            "seconds": round(self.seconds, 2),
            "items_per_second": round(items / self.seconds, 2) if self.seconds else None,
            "manifest": self.manifest_key,
        }


def new_prefix() -> str:
    return f"{BATCH_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}/"


def upload_batch(
    workflow: LocalWorkflow, items: Iterable[tuple[str, bytes]], prefix: str | None = None
) -> tuple[str, dict[str, str]]:
    """Put ``(name, body)`` items under ``prefix`` (default: a fresh one); return the prefix
    and the key of each name. Two items of the same name get their own keys."""
    prefix = prefix or new_prefix()
    keys: dict[str, str] = {}
    for index, (name, body) in enumerate(items):
        key = f"{prefix}{index:05d}-{Path(name).name}"
        started = workflow.upload(body, key)
        if started:
            raise WorkflowError(f"uploading {key} started {len(started)} workflow executions")
        keys[key] = name
    return prefix, keys


def _result_writer_prefix(definition: dict[str, Any]) -> str:
    for state in definition.get("States", {}).values():
        writer = state.get("ResultWriter")
        if writer is not None:
            return str(writer.get("Parameters", {}).get("Prefix", ""))
    raise WorkflowError("the batch state machine has no ResultWriter")


def start_batch(workflow: LocalWorkflow, prefix: str) -> str:
    if workflow.spec.batch is None:
        raise WorkflowError(
            "the assembly has no batch state machine: synthesize with -c batch_mode=true"
        )
    return workflow._sfn.start_execution(
        stateMachineArn=workflow.spec.batch.state_machine_arn,
        name=uuid.uuid4().hex,
        input=json.dumps({"prefix": prefix}),
    )["executionArn"]


def run_batch(workflow: LocalWorkflow, prefix: str, timeout: float = 3600.0) -> BatchRun:
    """Start the batch on ``prefix``, wait for its end, read its results from S3."""
    started = time.perf_counter()
    arn = start_batch(workflow, prefix)
    sfn = workflow._sfn
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=arn))["status"] not in TERMINAL:
        if time.monotonic() > deadline:
            raise WorkflowError(
                f"the batch {arn} is still {described['status']} after {timeout:.0f} s"
            )
        time.sleep(0.05)
    run = BatchRun(
        prefix=prefix,
        execution_arn=arn,
        status=described["status"],
        error=described.get("error"),
        cause=described.get("cause"),
        seconds=time.perf_counter() - started,
    )
    map_runs = sfn.list_map_runs(executionArn=arn)["mapRuns"]
    if not map_runs:
        return run  # ended before the Distributed Map (the prefix check)
    map_run = sfn.describe_map_run(mapRunArn=map_runs[0]["mapRunArn"])
    run.map_run_arn = map_run["mapRunArn"]
    run.map_run_status = map_run["status"]
    run.item_counts = dict(map_run["itemCounts"])
    folder = _result_writer_prefix(workflow.spec.batch.definition)  # type: ignore[union-attr]
    folder = folder if not folder or folder.endswith("/") else f"{folder}/"
    key = f"{folder}{run.map_run_arn.split(':')[-1]}/manifest.json"
    try:
        run.manifest = json.loads(workflow.read_object(workflow.bucket, key))
    except workflow._s3.exceptions.NoSuchKey:
        return run  # the map run wrote no results (it failed before its items)
    run.manifest_key = key
    bucket = run.manifest["DestinationBucket"]
    for files in run.manifest["ResultFiles"].values():
        for result_file in files:
            run.records += json.loads(workflow.read_object(bucket, result_file["Key"]))
    return run
