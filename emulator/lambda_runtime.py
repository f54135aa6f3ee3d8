"""Run moto's Lambda invocations through the real handler files (the one moto patch).

moto's Docker-free Lambda backend (``LambdaSimpleBackend``, chosen by
``mock_aws(config={"lambda": {"use_docker": False}})``) only echoes the payload. Step
Functions' interpreter in moto invokes Lambda through a boto3 client that moto intercepts, and
reads back the payload plus the ``x-amz-function-error`` header; on an error it takes the
``errorType`` of the payload as the error name that Retry and Catch match. This module replaces
``LambdaSimpleBackend.invoke`` with a dispatcher that:

- loads each function's handler file by path (``importlib.util.spec_from_file_location``,
  a unique module name per function, loaded at its first invocation like a cold start) and
  leaves the venv first on ``sys.path`` (a bundled asset holds Linux arm64 wheels; the asset
  folder is only appended, for handlers that import a sibling module);
- sets the function's ``Environment`` variables, and the runtime's own ones, for the time of
  the call (process-wide, so invocations are serialized by a lock);
- answers the Lambda Python runtime's error envelope on an exception:
  ``x-amz-function-error: Unhandled`` and ``{"errorMessage", "errorType", "requestId",
  "stackTrace"}`` with ``errorType`` the exception's class name.

``check_moto_compatibility()`` fails loudly when a moto upgrade moves the patch point.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from emulator.errors import EmulatorError, MotoPatchError
from emulator.xray import invocation_trace_header

EXPECTED_INVOKE_PARAMETERS = (
    "self",
    "function_name",
    "qualifier",
    "body",
    "headers",
    "response_headers",
)

_install_lock = threading.Lock()
_installed: LambdaRuntime | None = None


def _simple_backend_class() -> type:
    try:
        from moto.awslambda_simple.models import LambdaSimpleBackend
    except ImportError as error:
        raise MotoPatchError(
            "moto.awslambda_simple.models.LambdaSimpleBackend is gone: the local mode patches "
            f"its invoke(); pin moto==5.2.5 or port emulator/lambda_runtime.py ({error})"
        ) from error
    return LambdaSimpleBackend


def check_moto_compatibility() -> None:
    """Raise ``MotoPatchError`` unless moto still has the patch point this module replaces."""
    backend = _simple_backend_class()
    invoke = backend.__dict__.get("invoke")
    if invoke is None:
        raise MotoPatchError("LambdaSimpleBackend no longer defines invoke() itself")
    parameters = tuple(inspect.signature(invoke).parameters)
    if parameters != EXPECTED_INVOKE_PARAMETERS:
        raise MotoPatchError(
            f"LambdaSimpleBackend.invoke{parameters} changed from "
            f"{EXPECTED_INVOKE_PARAMETERS}: port emulator/lambda_runtime.py to this moto"
        )
    from moto.awslambda.models import LambdaBackend

    if not hasattr(LambdaBackend, "get_function"):
        raise MotoPatchError("moto's LambdaBackend.get_function() is gone")


class HandlerNotRegistered(EmulatorError):
    """moto was asked to invoke a function the local runtime has no handler file for."""


@dataclass(frozen=True)
class FunctionCode:
    """Where a function's code lives: its asset folder and ``Handler`` (``module.function``)."""

    code_dir: Path
    handler: str
    memory_mb: int = 128
    timeout_seconds: int = 3

    @property
    def handler_file(self) -> Path:
        module_path, _, _ = self.handler.rpartition(".")
        return self.code_dir / (module_path.replace(".", "/") + ".py")

    @property
    def handler_function(self) -> str:
        return self.handler.rpartition(".")[2]


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float = field(repr=False)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    """One dispatched invocation, kept for tests and reports."""

    function_name: str
    event: Any
    result: Any = None
    error_type: str | None = None
    duration_ms: float = 0.0


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def error_envelope(error: BaseException, request_id: str) -> dict[str, Any]:
    """The Lambda Python runtime's payload for an unhandled exception."""
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(
            [
                frame
                for frame in traceback.extract_tb(error.__traceback__)
                if frame.filename != __file__
            ]
        ),
    }


class LambdaRuntime:
    """Registered functions plus the installed patch; use as a context manager.

    ``environment_overrides`` apply on top of every function's own variables (the local mode
    sets ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` there, for instance).
    """

    def __init__(self, environment_overrides: Mapping[str, str] | None = None) -> None:
        self.environment_overrides = dict(environment_overrides or {})
        self.invocations: list[Invocation] = []
        self._functions: dict[str, FunctionCode] = {}
        self._modules: dict[str, ModuleType] = {}
        self._appended_paths: list[str] = []
        self._call_lock = threading.RLock()
        self._original_invoke: Callable[..., Any] | None = None

    def register(self, function_name: str, code: FunctionCode) -> None:
        if not code.handler_file.is_file():
            raise HandlerNotRegistered(
                f"{function_name}: handler {code.handler!r} needs {code.handler_file}, "
                "which does not exist"
            )
        self._functions[function_name] = code

    # -- the patch ------------------------------------------------------------------------
    def install(self) -> LambdaRuntime:
        global _installed
        check_moto_compatibility()
        backend = _simple_backend_class()
        with _install_lock:
            if _installed is not None:
                raise MotoPatchError("another LambdaRuntime is installed in this process")
            self._original_invoke = backend.__dict__["invoke"]
            runtime = self

            def invoke(
                self: Any,
                function_name: str,
                qualifier: str | None,
                body: Any,
                headers: Any,
                response_headers: Any,
            ) -> bytes:
                function = self.get_function(function_name, qualifier)
                return runtime.dispatch(function, body, response_headers)

            backend.invoke = invoke
            _installed = self
        return self

    def uninstall(self) -> None:
        global _installed
        with _install_lock:
            if _installed is self and self._original_invoke is not None:
                _simple_backend_class().invoke = self._original_invoke
                _installed = None
        for path in self._appended_paths:
            if path in sys.path:
                sys.path.remove(path)
        self._appended_paths.clear()
        for module in self._modules.values():
            sys.modules.pop(module.__name__, None)
        self._modules.clear()

    def __enter__(self) -> LambdaRuntime:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    # -- dispatch -------------------------------------------------------------------------
    def dispatch(self, function: Any, body: Any, response_headers: dict[str, str]) -> bytes:
        """Run the registered handler of moto's ``function`` on the payload ``body``."""
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        event = json.loads(body) if body else {}
        record, payload = self._invoke(
            function.function_name, function.function_arn, function.environment_vars, event
        )
        if record.error_type is not None:
            response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(payload).encode("utf-8")

    def call(
        self, function_name: str, event: Any, environment: Mapping[str, str], arn: str = ""
    ) -> Invocation:
        """Run a registered handler directly, without moto: the same code, environment and
        context as an invocation (benchmarks compare the two)."""
        record, _ = self._invoke(function_name, arn, environment, event)
        return record

    def _invoke(
        self, name: str, arn: str, environment: Mapping[str, Any] | None, event: Any
    ) -> tuple[Invocation, Any]:
        code = self._functions.get(name)
        if code is None:
            raise HandlerNotRegistered(
                f"no handler file registered for Lambda function {name!r}; registered: "
                f"{sorted(self._functions)}"
            )
        request_id = str(uuid.uuid4())
        context = LocalLambdaContext(
            function_name=name,
            function_version="$LATEST",
            invoked_function_arn=arn,
            memory_limit_in_mb=code.memory_mb,
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{name}",
            log_stream_name=f"local/{request_id}",
            deadline=time.monotonic() + code.timeout_seconds,
        )
        variables = {
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(code.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": context.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": context.log_stream_name,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "LAMBDA_TASK_ROOT": str(code.code_dir),
            "_HANDLER": code.handler,
            "_X_AMZN_TRACE_ID": invocation_trace_header(),
            **{key: str(value) for key, value in (environment or {}).items()},
            **self.environment_overrides,
        }
        record = Invocation(function_name=name, event=event)
        started = time.perf_counter()
        with self._call_lock, _environment(variables):
            try:
                handler = getattr(self._load(name, code), code.handler_function)
                record.result = handler(event, context)
                payload = record.result
            except Exception as error:
                record.error_type = type(error).__name__
                payload = error_envelope(error, request_id)
        record.duration_ms = (time.perf_counter() - started) * 1000
        self.invocations.append(record)
        return record, payload

    def _load(self, name: str, code: FunctionCode) -> ModuleType:
        module = self._modules.get(name)
        if module is not None:
            return module
        code_dir = str(code.code_dir)
        if code_dir not in sys.path:
            sys.path.append(code_dir)
            self._appended_paths.append(code_dir)
        module_name = "_local_lambda_" + re.sub(r"\W", "_", name)
        spec = importlib.util.spec_from_file_location(module_name, code.handler_file)
        if spec is None or spec.loader is None:
            raise HandlerNotRegistered(f"cannot import {code.handler_file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        if not callable(getattr(module, code.handler_function, None)):
            raise HandlerNotRegistered(
                f"{code.handler_file} has no function {code.handler_function!r}"
            )
        self._modules[name] = module
        return module
