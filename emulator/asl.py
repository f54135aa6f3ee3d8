"""The state machine definition as the local mode runs it on moto's interpreter.

- ``shorten_retry_waits``: moto sleeps for real between retries; locally every Retrier waits
  at most ``seconds`` (moto accepts whole seconds >= 1 only). Only the loaded copy changes,
  never the synthesized template.
- ``distributed_map_as_moto_parses``: moto 5.2.5's parser rejects two things of a Distributed
  Map that AWS accepts: ``ProcessorConfig.ExecutionType: EXPRESS`` (it knows only STANDARD)
  and an integer ``ToleratedFailurePercentage`` (it wants a JSON number with a fraction);
  the loaded copy says STANDARD and ``50.0``. The children still run as moto runs a STANDARD
  map child: inline, in the parent's interpreter, with no execution of their own.
- ``indexed_path_uses``: moto 5.2.5 evaluates ``$.a[0].b`` to ``[value]`` instead of
  ``value``; this lists where a definition would hit that.
- ``cached_program_parsing``: moto re-parses the definition for every execution (tens of
  milliseconds); this caches the parsed program per definition text, for definitions made of
  states whose runtime state lives in the execution's environment (no Map, no Parallel).
- ``cached_interpreter_clients``: moto's interpreter builds a new boto3 client for every task
  it runs (about 18 ms each), and for a Distributed Map's S3 ItemReader and ResultWriter,
  signed with fixed fake keys; this reuses one per region, service and state machine role
  (boto3 clients are thread-safe), built with the interpreter's own settings and signed with
  the session of the role the execution runs as, so that its grants are what is checked.
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3

from emulator.errors import MotoPatchError

CACHEABLE_STATE_TYPES = frozenset({"Task", "Pass", "Choice", "Wait", "Succeed", "Fail"})
_INDEXED_PATH = re.compile(r"\[\d+\]\.")
_PATH_FIELDS = ("InputPath", "OutputPath", "ResultPath", "ItemsPath", "ErrorPath", "CausePath")


def _states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition.get("States", {}).items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _states(branch)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from _states(state[key])


def shorten_retry_waits(definition: dict[str, Any], seconds: int = 1) -> dict[str, Any]:
    """A copy whose Retriers wait ``seconds`` at most (attempts, backoff and jitter kept)."""
    if seconds < 1:
        raise ValueError("moto accepts IntervalSeconds and MaxDelaySeconds of 1 or more")
    shortened = copy.deepcopy(definition)
    for _, state in _states(shortened):
        for retrier in state.get("Retry", []):
            retrier["IntervalSeconds"] = min(retrier.get("IntervalSeconds", 1), seconds)
            retrier["MaxDelaySeconds"] = seconds
    return shortened


def distributed_map_as_moto_parses(definition: dict[str, Any]) -> dict[str, Any]:
    """A copy whose Distributed Maps moto's parser accepts (see module doc); else unchanged."""
    parsable = copy.deepcopy(definition)
    for _, state in _states(parsable):
        config = state.get("ItemProcessor", {}).get("ProcessorConfig", {})
        if config.get("Mode") != "DISTRIBUTED":
            continue
        if config.get("ExecutionType") == "EXPRESS":
            config["ExecutionType"] = "STANDARD"
        if isinstance(state.get("ToleratedFailurePercentage"), int):
            state["ToleratedFailurePercentage"] = float(state["ToleratedFailurePercentage"])
    return parsable


def _path_strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith(".$") and isinstance(item, str):
                yield f"{where}.{key}", item
            else:
                yield from _path_strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _path_strings(item, f"{where}[{index}]")


def indexed_path_uses(definition: dict[str, Any]) -> list[str]:
    """``State.Field: path`` for every JSONPath like ``$.a[0].b``, which moto gets wrong."""
    found = []
    for name, state in _states(definition):
        candidates = [
            (f"{name}.{field}", state[field])
            for field in _PATH_FIELDS
            if isinstance(state.get(field), str)
        ]
        candidates += list(_path_strings(state, name))
        for choice in state.get("Choices", []):
            candidates += [(f"{name}.Choices.Variable", choice.get("Variable", ""))]
        found += [f"{where}: {path}" for where, path in candidates if _INDEXED_PATH.search(path)]
    return found


def is_cacheable(definition: dict[str, Any]) -> bool:
    """Whether the parsed program of ``definition`` can be shared between executions."""
    return all(state.get("Type") in CACHEABLE_STATE_TYPES for _, state in _states(definition))


_cache_lock = threading.Lock()
_cache_installed = False


@contextmanager
def cached_program_parsing(cacheable_definitions: set[str]) -> Iterator[None]:
    """Reuse the parsed program for executions of the definitions (JSON texts) given."""
    global _cache_installed
    try:
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    except ImportError as error:
        raise MotoPatchError(f"moto's Step Functions interpreter moved: {error}") from error
    original = ExecutionWorker.__dict__.get("_get_evaluation_entrypoint")
    if original is None:
        raise MotoPatchError(
            "moto's ExecutionWorker._get_evaluation_entrypoint is gone: port emulator/asl.py"
        )

    @functools.lru_cache(maxsize=16)
    def parse(definition: str) -> Any:
        return AmazonStateLanguageParser.parse(definition)[0]

    def entrypoint(self: Any) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        if definition in cacheable_definitions:
            return parse(definition)
        return original(self)

    with _cache_lock:
        if _cache_installed:
            raise MotoPatchError("program parsing is already cached in this process")
        ExecutionWorker._get_evaluation_entrypoint = entrypoint
        _cache_installed = True
    try:
        yield
    finally:
        with _cache_lock:
            ExecutionWorker._get_evaluation_entrypoint = original
            _cache_installed = False


# Where moto's interpreter calls boto_client_for: Lambda tasks, a Distributed Map's S3
# ItemReader and its S3 ResultWriter (each module imported the function by name).
_CLIENT_MODULES = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval"
    ".resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer"
    ".resource_eval.resource_eval_s3",
)


@contextmanager
def cached_interpreter_clients(
    credentials: Mapping[str, str], by_role: Mapping[str, Mapping[str, str]] | None = None
) -> Iterator[None]:
    """Reuse the boto3 clients moto's interpreter builds, signed with ``by_role[role]`` for an
    execution of a state machine whose role is ``role``, else with ``credentials``
    (``boto3.client`` keyword arguments; see module doc)."""
    import importlib

    try:
        modules = [importlib.import_module(name) for name in _CLIENT_MODULES]
    except ImportError as error:
        raise MotoPatchError(f"moto's Step Functions interpreter moved: {error}") from error
    originals = [getattr(module, "boto_client_for", None) for module in modules]
    if any(
        original is None or getattr(original, "_local_mode_cache", False) for original in originals
    ):
        raise MotoPatchError(
            "moto's boto_client_for is missing or already cached in one of "
            f"{', '.join(_CLIENT_MODULES)}: port emulator/asl.py"
        )
    from moto.stepfunctions.parser.asl.utils import boto_client

    if inspect.getsource(boto_client.boto_client_for).count("state_credentials") != 1:
        raise MotoPatchError(
            "moto's boto_client_for now uses state_credentials: caching its clients per "
            "region and service would be wrong; port emulator/asl.py"
        )
    original = boto_client.boto_client_for
    roles = dict(by_role or {})
    clients: dict[tuple[str, str, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto's own boto_client_for ignores state_credentials (fixed fake keys): one client
        # per region, service and role is what it would build every time, keys aside.
        role = getattr(state_credentials, "role_arn", None) or ""
        with lock:
            client = clients.get((region, service, role))
            if client is None:
                template = original(
                    region=region, service=service, state_credentials=state_credentials
                )
                client = clients[(region, service, role)] = boto3.client(
                    service,
                    region_name=region,
                    endpoint_url=template.meta.endpoint_url,
                    config=template.meta.config,
                    **roles.get(role, credentials),
                )
        return client

    boto_client_for._local_mode_cache = True  # type: ignore[attr-defined]
    for module in modules:
        module.boto_client_for = boto_client_for
    try:
        yield
    finally:
        for module, saved in zip(modules, originals, strict=True):
            module.boto_client_for = saved
