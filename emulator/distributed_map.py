"""A Distributed Map on moto's interpreter (5.2.5) as AWS runs it, where moto falls short.

``aws_distributed_map()`` patches, for the block's time:
- the S3 ``ItemReader`` (ListObjectsV2): moto reads one page (1,000 keys) and fails on a
  prefix with no objects; here every page is read and an empty prefix is zero items.
- the item processor: moto keeps no child's outcome and ignores
  ``ToleratedFailurePercentage``; here every item's input, output or error and cause, start
  and stop are kept per map run, and the map run fails with
  ``States.ExceedToleratedFailureThreshold`` once more than that percentage of all its items
  have failed (no item is started after that; the ones already running finish and keep their
  outcome, where AWS would abort them).
- the S3 ``ResultWriter``: moto writes only ``manifest.json`` and lists no result files; here
  ``SUCCEEDED_0.json`` and ``FAILED_0.json`` (failed, timed out and aborted children) are
  written beside it in the format AWS documents, also when the map run failed on the
  threshold, as AWS does.

Every S3 call goes through the interpreter's client for the execution's role (see
``emulator.asl.cached_interpreter_clients``), so the batch role's grants are what is checked.
``ToleratedFailureCount`` is not applied.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulator.errors import MotoPatchError

EXCEEDED_ERROR = "States.ExceedToleratedFailureThreshold"
# The result file of each child status (AWS: FAILED gathers failed, timed out and aborted).
RESULT_FILE_OF = {"SUCCEEDED": "SUCCEEDED", "FAILED": "FAILED", "TIMED_OUT": "FAILED"} | {
    "ABORTED": "FAILED"
}
IN_FLIGHT_WAIT_SECONDS = 600.0

_STATE_MAP = "moto.stepfunctions.parser.asl.component.state.exec.state_map"
_READER = f"{_STATE_MAP}.item_reader.eval.resource_eval_s3"
_WRITER = f"{_STATE_MAP}.result_writer.resource_eval.resource_eval_s3"
_WORKER = f"{_STATE_MAP}.iteration.itemprocessor.distributed_item_processor_worker"
_MAP = f"{_STATE_MAP}.state_map"


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class ItemResult:
    """One child's outcome, as a line of a result file says it."""

    index: int
    input: Any
    status: str
    started: datetime
    stopped: datetime
    state_machine_arn: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    name: str = field(default_factory=lambda: str(uuid.uuid4()))

    def as_aws_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "ExecutionArn": self.state_machine_arn.replace(":stateMachine:", ":execution:")
            + f":{self.name}",
            "Input": json.dumps(self.input),
            "InputDetails": {"Included": True},
            "Name": self.name,
        }
        if self.status == "SUCCEEDED":
            record |= {"Output": json.dumps(self.output), "OutputDetails": {"Included": True}}
            redrive = ("NOT_REDRIVABLE", "Execution is SUCCEEDED and cannot be redriven")
        else:
            record |= {"Error": self.error, "Cause": self.cause}
            redrive = ("REDRIVABLE_BY_MAP_RUN", "Execution can be redriven by its Map Run")
        return record | {
            "RedriveCount": 0,
            "RedriveStatus": redrive[0],
            "RedriveStatusReason": redrive[1],
            "StartDate": _timestamp(self.started),
            "StateMachineArn": self.state_machine_arn,
            "Status": self.status,
            "StopDate": _timestamp(self.stopped),
        }


class MapRunResults:
    """The outcomes of one map run's items, and whether its failure threshold was passed."""

    def __init__(self) -> None:
        self.items: list[ItemResult] = []
        self.running = 0
        self.exceeded = False
        self.condition = threading.Condition()

    def wait_idle(self, timeout: float) -> bool:
        with self.condition:
            return self.condition.wait_for(lambda: self.running == 0, timeout)


_runs: dict[str, MapRunResults] = {}
_runs_lock = threading.Lock()
_selected = threading.local()
_patch_lock = threading.Lock()


def map_run_results(map_run_arn: str) -> MapRunResults:
    with _runs_lock:
        return _runs.setdefault(map_run_arn, MapRunResults())


def write_results(
    s3: Any, bucket: str, prefix: str, map_run_arn: str, items: list[ItemResult]
) -> str:
    """Put the result files and the manifest as AWS lays them out; return the manifest key."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    folder = f"{prefix}{map_run_arn.split(':')[-1]}/"
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    by_file: dict[str, list[dict[str, Any]]] = {}
    for item in sorted(items, key=lambda result: result.index):
        by_file.setdefault(RESULT_FILE_OF[item.status], []).append(item.as_aws_record())
    for kind, records in sorted(by_file.items()):
        body = json.dumps(records).encode()
        key = f"{folder}{kind}_0.json"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        files[kind].append({"Key": key, "Size": len(body)})
    manifest = {"DestinationBucket": bucket, "MapRunArn": map_run_arn, "ResultFiles": files}
    key = f"{folder}manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest, indent=2).encode())
    return key


def _modules() -> tuple[Any, Any, Any, Any]:
    try:
        return tuple(importlib.import_module(name) for name in (_READER, _WRITER, _WORKER, _MAP))
    except ImportError as error:
        raise MotoPatchError(f"moto's Distributed Map moved: {error}; port {__name__}") from error


def _exceeded_failure(env: Any, failed: int, total: int, percentage: float) -> Exception:
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    details = ExecutionFailedEventDetails(
        error=EXCEEDED_ERROR,
        cause=f"{failed} of the map run's {total} items failed, more than the tolerated "
        f"{percentage:g}%",
    )
    return FailureEventException(
        FailureEvent(
            env=env,
            error_name=StatesErrorName(
                typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold
            ),
            event_type=HistoryEventType.ExecutionFailed,
            event_details=EventDetails(executionFailedEventDetails=details),
        )
    )


def _outcome(env: Any, job_output: Any) -> tuple[str, Any, str | None, str | None]:
    from moto.stepfunctions.parser.asl.eval.program_state import (
        ProgramError,
        ProgramStopped,
        ProgramTimedOut,
    )

    state = env.program_state()
    if isinstance(state, ProgramError):
        error = state.error or {}
        return "FAILED", None, error.get("error"), error.get("cause")
    if isinstance(state, ProgramStopped):
        return "ABORTED", None, "States.Aborted", "the child was stopped"
    if isinstance(state, ProgramTimedOut):
        return "TIMED_OUT", None, "States.Timeout", "the child timed out"
    if job_output is None:
        return "FAILED", None, "States.Runtime", "moto's interpreter failed the child"
    return "SUCCEEDED", job_output, None, None


@contextmanager
def aws_distributed_map() -> Iterator[None]:
    """Patch moto's Distributed Map as the module doc says, for the block's time."""
    reader, writer, worker_module, map_module = _modules()
    reader_s3, writer_s3 = reader.ResourceEvalS3, writer.ResourceEvalS3
    worker = worker_module.DistributedItemProcessorWorker
    state_map = map_module.StateMap
    names = [
        (reader_s3, "_handle_list_objects_v2"),
        (writer_s3, "_handle_put_object"),
        (worker, "_eval_input"),
        (worker, "_eval_job"),
        (state_map, "_eval_execution"),
    ]
    sources = "".join(inspect.getsource(cls) for cls in worker.__mro__[:3])  # with its bases
    if any(getattr(owner, name, None) is None for owner, name in names) or not all(
        f"self.{field}" in sources for field in ("_map_run_record", "_job_pool", "_env")
    ):
        raise MotoPatchError(f"moto's Distributed Map changed shape: port {__name__}")
    # What each class defines itself (None: inherited), to put back exactly on exit.
    own = {(owner, name): owner.__dict__.get(name) for owner, name in names}
    original_input = worker._eval_input
    original_job = worker._eval_job
    original_execution = state_map._eval_execution

    def list_all_pages(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        s3 = reader_s3._get_s3_client(
            resource_runtime_part=resource_runtime_part, state_credentials=state_credentials
        )
        parameters = env.stack.pop()
        contents = []
        for page in s3.get_paginator("list_objects_v2").paginate(**parameters):
            contents += page.get("Contents", [])
        env.stack.append(contents)

    def put_results(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        parameters = env.stack.pop()
        env.stack.pop()  # the items' outputs: the results are this module's records
        s3 = writer_s3._get_s3_client(
            resource_runtime_part=resource_runtime_part, state_credentials=state_credentials
        )
        map_run_arn = env.map_run_record_pool_manager.get_all()[-1].map_run_arn
        run = map_run_results(map_run_arn)
        key = write_results(s3, parameters["Bucket"], parameters["Prefix"], map_run_arn, run.items)
        env.stack.append(
            {
                "MapRunArn": map_run_arn,
                "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": key},
            }
        )

    def eval_input(self: Any, env_frame: Any) -> None:
        original_input(self, env_frame)
        _selected.value = copy.deepcopy(env_frame.states.get_input())

    def eval_job(self: Any, env: Any, job: Any) -> None:
        record = self._map_run_record
        run = map_run_results(record.map_run_arn)
        started = _now()
        _selected.value = job.job_input
        with run.condition:
            run.running += 1
        try:
            original_job(self, env, job)
        finally:
            status, output, error, cause = _outcome(env, job.job_output)
            result = ItemResult(
                index=job.job_index,
                input=_selected.value,
                status=status,
                started=started,
                stopped=_now(),
                state_machine_arn=record.map_state_machine_arn,
                output=output,
                error=error,
                cause=cause,
            )
            with run.condition:
                run.items.append(result)
                run.running -= 1
                total = getattr(self._job_pool, "_jobs_number", None)
                if total is None:
                    raise MotoPatchError(f"moto's JobPool has no _jobs_number: port {__name__}")
                failed = sum(item.status != "SUCCEEDED" for item in run.items)
                percentage = float(record.tolerated_failure_percentage)
                if not run.exceeded and failed * 100 > percentage * total:
                    run.exceeded = True
                    job.job_output = _exceeded_failure(self._env, failed, total, percentage)
                run.condition.notify_all()

    def eval_execution(self: Any, env: Any) -> None:
        try:
            original_execution(self, env)
        except Exception:
            records = env.map_run_record_pool_manager.get_all()
            run = map_run_results(records[-1].map_run_arn) if records else None
            if self.result_writer is not None and run is not None and run.exceeded:
                run.wait_idle(IN_FLIGHT_WAIT_SECONDS)
                env.stack.append([])
                self.result_writer.eval(env)
                env.stack.pop()
            raise

    patches = {
        (reader_s3, "_handle_list_objects_v2"): staticmethod(list_all_pages),
        (writer_s3, "_handle_put_object"): staticmethod(put_results),
        (worker, "_eval_input"): eval_input,
        (worker, "_eval_job"): eval_job,
        (state_map, "_eval_execution"): eval_execution,
    }
    if not _patch_lock.acquire(blocking=False):
        raise MotoPatchError("moto's Distributed Map is already patched in this process")
    try:
        for (owner, name), patch in patches.items():
            setattr(owner, name, patch)
        yield
    finally:
        for (owner, name), original in own.items():
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        with _runs_lock:
            _runs.clear()
        _patch_lock.release()
