"""The state machine definition as the local mode runs it on moto's interpreter.

- ``shorten_retry_waits``: moto sleeps for real between retries; locally every Retrier waits
  at most ``seconds`` (moto accepts whole seconds >= 1 only). Only the loaded copy changes,
  never the synthesized template.
- ``indexed_path_uses``: moto 5.2.5 evaluates ``$.a[0].b`` to ``[value]`` instead of
  ``value``; this lists where a definition would hit that.
- ``cached_program_parsing``: moto re-parses the definition for every execution (tens of
  milliseconds); this caches the parsed program per definition text, for definitions made of
  states whose runtime state lives in the execution's environment (no Map, no Parallel).
- ``cached_interpreter_clients``: moto's interpreter builds a new boto3 client for every task
  it runs (about 18 ms each), signed with fixed fake keys; this reuses one per region and
  service (boto3 clients are thread-safe), built with the interpreter's own settings and
  signed with the state machine role's session, so that its grants are what is checked.
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


@contextmanager
def cached_interpreter_clients(credentials: Mapping[str, str]) -> Iterator[None]:
    """Reuse the boto3 clients moto's interpreter builds for its tasks, signed with
    ``credentials`` (``boto3.client`` keyword arguments; see module doc)."""
    try:
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
            lambda_eval_utils,
        )
    except ImportError as error:
        raise MotoPatchError(f"moto's Step Functions interpreter moved: {error}") from error
    original = getattr(lambda_eval_utils, "boto_client_for", None)
    if original is None or getattr(original, "_local_mode_cache", False):
        raise MotoPatchError(
            "moto's lambda_eval_utils.boto_client_for is missing or already cached: "
            "port emulator/asl.py"
        )
    from moto.stepfunctions.parser.asl.utils import boto_client

    if inspect.getsource(boto_client.boto_client_for).count("state_credentials") != 1:
        raise MotoPatchError(
            "moto's boto_client_for now uses state_credentials: caching its clients per "
            "region and service would be wrong; port emulator/asl.py"
        )
    clients: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto's own boto_client_for ignores state_credentials (fixed fake keys): one client
        # per region and service is what it would build every time, keys aside.
        with lock:
            client = clients.get((region, service))
            if client is None:
                template = original(
                    region=region, service=service, state_credentials=state_credentials
                )
                client = clients[(region, service)] = boto3.client(
                    service,
                    region_name=region,
                    endpoint_url=template.meta.endpoint_url,
                    config=template.meta.config,
                    **credentials,
                )
        return client

    boto_client_for._local_mode_cache = True  # type: ignore[attr-defined]
    lambda_eval_utils.boto_client_for = boto_client_for
    try:
        yield
    finally:
        lambda_eval_utils.boto_client_for = original
