"""Run moto's Lambda invocations through the real handler files (the one moto patch).

moto's Docker-free Lambda backend (``LambdaSimpleBackend``, chosen by
``mock_aws(config={"lambda": {"use_docker": False}})``) only echoes the payload. Step
Functions' interpreter in moto invokes Lambda through a boto3 client that moto intercepts, and
reads back the payload plus the ``x-amz-function-error`` header; on an error it takes the
``errorType`` of the payload as the error name that Retry and Catch match. This module replaces
``LambdaSimpleBackend.invoke`` with a dispatcher that:

- runs each function in sandboxes of its own (``emulator.sandbox``): a worker process per
  concurrent invocation, started at the first one (the cold start) and kept warm, importing
  only from the function's asset folder and what the Lambda runtime ships;
- gives each invocation the function's ``Environment`` variables, the runtime's own ones and
  the function's ``credentials`` (its role's session, as Lambda does);
- answers the Lambda Python runtime's error envelope on an exception:
  ``x-amz-function-error: Unhandled`` and ``{"errorMessage", "errorType", "requestId",
  "stackTrace"}`` with ``errorType`` the exception's class name (``Runtime.ImportModuleError``,
  ``Sandbox.Timedout`` and ``Runtime.ExitError`` as Lambda names those failures);
- throttles a function with a reserved concurrency (``reserve``) beyond it: the invocation
  fails as ``Lambda.TooManyRequestsException``, the error name Step Functions matches (moto's
  interpreter would name an Invoke ClientError ``Exception``, so it comes as a function error);
- runs at most ``max_sandboxes`` sandboxes per function when given: more concurrent
  invocations wait for one (a bound on this machine's processes, not a Lambda behaviour).

``check_moto_compatibility()`` fails loudly when a moto upgrade moves the patch point.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.errors import EmulatorError, MotoPatchError, require_parameters
from emulator.sandbox import Sandbox
from emulator.xray import invocation_trace_header

EXPECTED_INVOKE_PARAMETERS = (
    "self",
    "function_name",
    "qualifier",
    "body",
    "headers",
    "response_headers",
)

# The error Step Functions sees when Lambda throttles an invocation.
THROTTLED = "Lambda.TooManyRequestsException"

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
    require_parameters(
        invoke,
        EXPECTED_INVOKE_PARAMETERS,
        "LambdaSimpleBackend.invoke",
        "port emulator/lambda_runtime.py to this moto",
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
class Invocation:
    """One dispatched invocation, kept for tests and reports."""

    function_name: str
    event: Any
    result: Any = None
    error_type: str | None = None
    duration_ms: float = 0.0


@dataclass
class _Function:
    code: FunctionCode
    environment: dict[str, str]
    idle: list[Sandbox] = field(default_factory=list)
    started: int = 0
    reserved: int | None = None
    in_flight: int = 0
    throttled: int = 0
    peak_in_flight: int = 0
    slots: threading.Semaphore | None = None


class LambdaRuntime:
    """Registered functions plus the installed patch; use as a context manager.

    ``environment_overrides`` apply on top of every function's own variables (the local mode
    sets ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` there, for instance). Each function's output
    goes to ``log_path(name)``, as it would go to its log group.
    """

    def __init__(
        self,
        environment_overrides: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
        max_sandboxes: int | None = None,
    ) -> None:
        self.environment_overrides = dict(environment_overrides or {})
        self.max_sandboxes = max_sandboxes
        self.invocations: list[Invocation] = []
        self._functions: dict[str, _Function] = {}
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._running.set()
        self._log_dir_owned = log_dir is None
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="local-lambda-logs-"))
        self._original_invoke: Callable[..., Any] | None = None

    def register(
        self, function_name: str, code: FunctionCode, credentials: Mapping[str, str] | None = None
    ) -> None:
        """Run ``function_name`` from ``code``; ``credentials`` are its role's session keys."""
        if not code.handler_file.is_file():
            raise HandlerNotRegistered(
                f"{function_name}: handler {code.handler!r} needs {code.handler_file}, "
                "which does not exist"
            )
        slots = threading.Semaphore(self.max_sandboxes) if self.max_sandboxes else None
        self._functions[function_name] = _Function(code, dict(credentials or {}), slots=slots)

    def reserve(self, function_name: str, concurrency: int) -> None:
        """Throttle ``function_name`` beyond ``concurrency`` invocations in flight (which
        bounds its sandboxes too: ``max_sandboxes`` no longer applies to it)."""
        self._functions[function_name].reserved = concurrency
        self._functions[function_name].slots = None

    def concurrency(self, function_name: str, reset: bool = False) -> dict[str, int]:
        """Peak invocations in flight and throttled invocations of the function (since the
        last ``reset``)."""
        function = self._functions[function_name]
        with self._lock:
            counts = {"peak_in_flight": function.peak_in_flight, "throttled": function.throttled}
            if reset:
                function.peak_in_flight = function.throttled = 0
        return counts

    @contextmanager
    def held(self) -> Iterator[None]:
        """Invocations wait until the block ends (to stage a race, as endpoint faults do)."""
        self._running.clear()
        try:
            yield
        finally:
            self._running.set()

    def log_path(self, function_name: str) -> Path:
        return self.log_dir / f"{function_name}.log"

    def cold_starts(self, function_name: str) -> int:
        """How many sandboxes the function has started."""
        return self._functions[function_name].started

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
        with self._lock:
            sandboxes = [box for function in self._functions.values() for box in function.idle]
            for function in self._functions.values():
                function.idle.clear()
        for sandbox in sandboxes:
            sandbox.stop()
        if self._log_dir_owned:
            shutil.rmtree(self.log_dir, ignore_errors=True)

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
        function = self._functions.get(name)
        if function is None:
            raise HandlerNotRegistered(
                f"no handler file registered for Lambda function {name!r}; registered: "
                f"{sorted(self._functions)}"
            )
        code = function.code
        request_id = str(uuid.uuid4())
        context = {
            "function_name": name,
            "function_version": "$LATEST",
            "invoked_function_arn": arn,
            "memory_limit_in_mb": code.memory_mb,
            "aws_request_id": request_id,
            "log_group_name": f"/aws/lambda/{name}",
            "log_stream_name": f"local/{request_id}",
        }
        variables = {
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(code.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": context["log_group_name"],
            "AWS_LAMBDA_LOG_STREAM_NAME": context["log_stream_name"],
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "LAMBDA_TASK_ROOT": str(code.code_dir),
            "_HANDLER": code.handler,
            "_X_AMZN_TRACE_ID": invocation_trace_header(),
            **function.environment,
            **{key: str(value) for key, value in (environment or {}).items()},
            **self.environment_overrides,
        }
        message = {
            "event": event,
            "context": context,
            "environment": variables,
            "timeout_seconds": code.timeout_seconds,
        }
        record = Invocation(function_name=name, event=event)
        self._running.wait()
        started = time.perf_counter()
        with self._lock:
            throttle = function.reserved is not None and function.in_flight >= function.reserved
            function.throttled += throttle
            function.in_flight += not throttle
            function.peak_in_flight = max(function.peak_in_flight, function.in_flight)
        if throttle:
            reply = {"error": {"errorType": THROTTLED, "errorMessage": "Rate Exceeded."}}
        else:
            try:
                reply = self._run_in_sandbox(name, function, message)
            finally:
                with self._lock:
                    function.in_flight -= 1
        record.duration_ms = (time.perf_counter() - started) * 1000
        if "error" in reply:
            payload = reply["error"]
            record.error_type = payload["errorType"]
        else:
            payload = record.result = reply["result"]
        with self._lock:
            self.invocations.append(record)
        return record, payload

    def _run_in_sandbox(self, name: str, function: _Function, message: Any) -> Any:
        if function.slots is not None:
            function.slots.acquire()
        try:
            sandbox = self._take_sandbox(name, function)
            reply = sandbox.invoke(message, function.code.timeout_seconds)
            self._return_sandbox(function, sandbox)
        finally:
            if function.slots is not None:
                function.slots.release()
        return reply

    def _take_sandbox(self, name: str, function: _Function) -> Sandbox:
        with self._lock:
            if function.idle:
                return function.idle.pop()
            function.started += 1
        return Sandbox(function.code.code_dir, function.code.handler, self.log_path(name))

    def _return_sandbox(self, function: _Function, sandbox: Sandbox) -> None:
        if not sandbox.alive:
            sandbox.stop()
            return
        with self._lock:
            function.idle.append(sandbox)
