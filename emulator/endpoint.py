"""A local SageMaker runtime endpoint: InvokeEndpoint over HTTP, on werkzeug.

Routes: ``GET /ping``, ``POST /endpoints/<name>/invocations`` (the InvokeEndpoint API, what
``boto3.client("sagemaker-runtime")`` calls when ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` points
here) and ``POST /invocations`` (the container's own route). Errors come back as the real
service sends them, so botocore raises the same exceptions: a failing model gives
``ModelError`` (HTTP 424, ``OriginalStatusCode``, ``OriginalMessage``), an unknown endpoint
``ValidationError``, a caller that ``authorize(headers, endpoint_arn)`` refuses (it raises
``PermissionError``) ``AccessDeniedException``. Successful invocations are sampled into
SageMaker data capture, written with the S3 client ``capture_client()`` makes (the endpoint's
execution role in the local mode).

Faults for tests are explicit: ``inject(Fault.model_error(500), times=2)``,
``Fault.service_unavailable()``, ``Fault.throttling()``, ``Fault.slow(seconds)``,
``Fault.malformed_body()``; ``go_down()`` / ``come_up()`` close and reopen the port. Bursts:
``capacity`` (``emulator.capacity``) throttles what the fleet cannot serve.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from emulator.capture import CaptureConfig, CaptureWriter
from emulator.inference_model import InferenceFailure, InferenceModel, InferenceResult

LOG = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
DEFAULT_VARIANT = "AllTraffic"
LOCAL_ACCOUNT = "123456789012"
_CORAL = "http://internal.amazon.com/coral"
_ERROR_NAMESPACES = {
    "ModelError": f"{_CORAL}/com.amazon.sagemaker/",
    "ValidationError": f"{_CORAL}/com.amazon.coral.validate/",
    "ServiceUnavailable": f"{_CORAL}/com.amazon.coral.availability/",
    "ThrottlingException": f"{_CORAL}/com.amazon.coral.availability/",
    "AccessDeniedException": f"{_CORAL}/com.amazon.coral.service/",
}


class FaultKind(Enum):
    MODEL_ERROR = "model_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    THROTTLING = "throttling"
    SLOW = "slow"
    MALFORMED_BODY = "malformed_body"


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour of the endpoint; build it with the class methods."""

    kind: FaultKind
    status: int = 500
    message: str = ""
    delay_seconds: float = 0.0

    @classmethod
    def model_error(cls, status: int = 500, message: str = "injected model failure") -> Fault:
        """The container answers ``status``: the caller gets ModelError (424)."""
        return cls(FaultKind.MODEL_ERROR, status=status, message=message)

    @classmethod
    def service_unavailable(cls) -> Fault:
        """SageMaker itself answers 503 ServiceUnavailable."""
        return cls(FaultKind.SERVICE_UNAVAILABLE, status=503, message="Service Unavailable")

    @classmethod
    def throttling(cls) -> Fault:
        """SageMaker answers 400 ThrottlingException (retried by botocore)."""
        return cls(FaultKind.THROTTLING, status=400, message="Rate exceeded")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """The answer comes after ``seconds`` (past a client's read timeout, say)."""
        return cls(FaultKind.SLOW, delay_seconds=seconds)

    @classmethod
    def malformed_body(cls) -> Fault:
        """A 200 whose body is not what the content type promises."""
        return cls(FaultKind.MALFORMED_BODY, status=200)


class _QuietRequestHandler(WSGIRequestHandler):
    """werkzeug logs every request to stderr by default; send it to debug logging."""

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 (werkzeug API)
        LOG.debug("%s %s", self.address_string(), message % args)


class LocalEndpoint:
    """Serve a model archive (or record) over the SageMaker runtime protocol.

    Use as a context manager, or ``start()`` / ``stop()``. ``endpoint_name=None`` accepts any
    name in the path (handy for ``serve``); a name makes other names a ``ValidationError``.
    Requests are served on threads, inference runs on ``model_workers`` long-lived threads
    (as the container's model server workers): torch keeps one thread pool per worker instead
    of building one per request.
    """

    def __init__(
        self,
        model: Path | InferenceModel,
        endpoint_name: str | None = None,
        variant_name: str = DEFAULT_VARIANT,
        host: str = "127.0.0.1",
        port: int = 0,
        capture: CaptureConfig | None = None,
        region: str = "us-east-1",
        account: str = LOCAL_ACCOUNT,
        model_workers: int = 1,
        authorize: Callable[[Mapping[str, str], str], None] | None = None,
        capture_client: Callable[[], Any] | None = None,
    ) -> None:
        self._owns_model = not isinstance(model, InferenceModel)
        self.model = model if isinstance(model, InferenceModel) else InferenceModel(model)
        self.endpoint_name = endpoint_name
        self.variant_name = variant_name
        self.host = host
        self.port = port
        self.region = region
        self.account = account
        self.capture_config = capture
        self._model_workers = model_workers
        self._authorize = authorize
        self._capture_client = capture_client
        self.capacity: Any = None  # an emulator.capacity.EndpointCapacity: throttles beyond it
        self._worker: ThreadPoolExecutor | None = None
        self._captures: dict[str, CaptureWriter] = {}
        self._faults: deque[list[Any]] = deque()
        self._fault_lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._url_map = Map(
            [
                Rule("/ping", endpoint="ping", methods=["GET"]),
                Rule("/invocations", endpoint="container", methods=["POST"]),
                Rule("/endpoints/<name>/invocations", endpoint="invoke", methods=["POST"]),
            ]
        )

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalEndpoint:
        """Listen (a free port when ``port`` is 0) and serve on a background thread."""
        self._worker = ThreadPoolExecutor(self._model_workers, thread_name_prefix="model-worker")
        self.come_up()
        return self

    def stop(self) -> None:
        """Stop serving, write the buffered capture, unload the model."""
        self.go_down()
        if self._worker is not None:
            self._worker.shutdown()
            self._worker = None
        for writer in self._captures.values():
            writer.close()
        self._captures.clear()
        if self._owns_model:
            self.model.close()

    def __enter__(self) -> LocalEndpoint:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def go_down(self) -> None:
        """Close the port: clients now get connection errors, as with a dead endpoint."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def come_up(self) -> None:
        """(Re)open the port, the same one after ``go_down()``."""
        if self._server is not None:
            return
        self._server = make_server(
            self.host,
            self.port,
            self._wsgi_app,
            threaded=True,
            request_handler=_QuietRequestHandler,
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"local-endpoint-{self.port}",
            daemon=True,
        )
        self._thread.start()

    # -- faults ---------------------------------------------------------------------------
    def inject(self, fault: Fault, times: int | None = 1) -> None:
        """Queue ``fault`` for the next ``times`` invocations (``None``: until cleared)."""
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 or None, got {times}")
        with self._fault_lock:
            self._faults.append([fault, times])

    def clear_faults(self) -> None:
        with self._fault_lock:
            self._faults.clear()

    def _next_fault(self) -> Fault | None:
        with self._fault_lock:
            if not self._faults:
                return None
            entry = self._faults[0]
            fault, remaining = entry
            if remaining is not None:
                entry[1] = remaining - 1
                if entry[1] == 0:
                    self._faults.popleft()
            return fault

    # -- capture --------------------------------------------------------------------------
    def capture_writer(self, endpoint_name: str) -> CaptureWriter | None:
        if self.capture_config is None:
            return None
        writer = self._captures.get(endpoint_name)
        if writer is None:
            writer = self._captures.setdefault(
                endpoint_name,
                CaptureWriter(
                    self.capture_config,
                    endpoint_name,
                    self.variant_name,
                    s3_client_factory=self._capture_client,
                ),
            )
        return writer

    def flush_capture(self) -> list[str]:
        """Write buffered capture records now; return every key written so far."""
        keys: list[str] = []
        for writer in list(self._captures.values()):
            writer.flush()
            keys.extend(writer.written_keys)
        return keys

    # -- WSGI -----------------------------------------------------------------------------
    def _wsgi_app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        adapter = self._url_map.bind_to_environ(environ)
        try:
            route, args = adapter.match()
        except HTTPException as error:
            return error(environ, start_response)
        if route == "ping":
            response = Response(json.dumps({"status": "Healthy"}), mimetype="application/json")
        elif route == "container":
            response = self._container_invocation(request)
        else:
            response = self._invoke_endpoint(request, args["name"])
        return response(environ, start_response)

    def _infer(self, body: bytes, content_type: str, accept: str | None) -> InferenceResult:
        if self._worker is None:
            return self.model.invoke(body, content_type, accept)
        return self._worker.submit(self.model.invoke, body, content_type, accept).result()

    def _container_invocation(self, request: Request) -> Response:
        try:
            result = self._infer(
                request.get_data(), request.content_type or "", request.headers.get("Accept")
            )
        except InferenceFailure as failure:
            response = Response(failure.body, status=failure.status_code)
            del response.headers["Content-Type"]  # TorchServe sends an error without one
            return response
        return Response(result.body, content_type=result.content_type)

    def _invoke_endpoint(self, request: Request, name: str) -> Response:
        request_id = str(uuid.uuid4())
        if self.endpoint_name is not None and name != self.endpoint_name:
            return self._error(
                400,
                "ValidationError",
                {"message": f"Endpoint {name} of account {self.account} not found."},
                request_id,
            )
        if self._authorize is not None:
            arn = f"arn:aws:sagemaker:{self.region}:{self.account}:endpoint/{name.lower()}"
            try:
                self._authorize(request.headers, arn)
            except PermissionError as denied:
                payload = {"message": str(denied)}
                return self._error(403, "AccessDeniedException", payload, request_id)
        body = request.get_data()
        if len(body) > MAX_PAYLOAD_BYTES:
            return self._error(
                400,
                "ValidationError",
                {
                    "message": f"Request body of {len(body)} bytes exceeds the "
                    f"{MAX_PAYLOAD_BYTES} bytes InvokeEndpoint accepts."
                },
                request_id,
            )
        fault = self._next_fault()
        if fault is None and self.capacity is not None:
            fault = self.capacity.admit()  # None after the service time, else throttling
        if fault is not None:
            self.stats[f"fault:{fault.kind.value}"] += 1
            if fault.kind is FaultKind.SLOW:
                time.sleep(fault.delay_seconds)
            elif fault.kind is FaultKind.MODEL_ERROR:
                return self._model_error(name, fault.status, fault.message, request_id)
            elif fault.kind is FaultKind.MALFORMED_BODY:
                return self._success(b'{"truncated": [0.5,', "application/json", request_id)
            else:
                error_type = (
                    "ServiceUnavailable"
                    if fault.kind is FaultKind.SERVICE_UNAVAILABLE
                    else "ThrottlingException"
                )
                return self._error(fault.status, error_type, {"message": fault.message}, request_id)
        content_type = request.content_type or "application/octet-stream"
        try:
            result = self._infer(body, content_type, request.headers.get("Accept"))
        except InferenceFailure as failure:
            self.stats["model_error"] += 1
            return self._model_error(name, failure.status_code, failure.body, request_id)
        self.stats["ok"] += 1
        writer = self.capture_writer(name)
        if writer is not None and writer.sampled():
            writer.record(
                body,
                content_type,
                result.body,
                result.content_type,
                inference_id=request.headers.get("X-Amzn-SageMaker-Inference-Id"),
            )
        return self._success(result.body, result.content_type, request_id)

    def _success(self, body: bytes, content_type: str, request_id: str) -> Response:
        response = Response(body, content_type=content_type)
        response.headers["x-Amzn-Invoked-Production-Variant"] = self.variant_name
        response.headers["x-amzn-RequestId"] = request_id
        return response

    def _model_error(self, name: str, status: int, message: str, request_id: str) -> Response:
        kind = "client" if 400 <= status < 500 else "server"
        log_group = f"/aws/sagemaker/Endpoints/{name}"
        console = (
            f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region="
            f"{self.region}#logEventViewer:group={log_group}"
        )
        payload = {
            "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
            "LogStreamArn": (f"arn:aws:logs:{self.region}:{self.account}:log-group:{log_group}"),
            "Message": (
                f'Received {kind} error ({status}) from primary with message "{message}". '
                f"See {console} in account {self.account} for more information."
            ),
            "OriginalMessage": message,
            "OriginalStatusCode": status,
        }
        return self._error(424, "ModelError", payload, request_id)

    def _error(
        self, status: int, error_type: str, payload: dict[str, Any], request_id: str
    ) -> Response:
        self.stats[f"error:{error_type}"] += 1
        response = Response(json.dumps(payload), status=status, mimetype="application/json")
        response.headers["x-amzn-ErrorType"] = f"{error_type}:{_ERROR_NAMESPACES[error_type]}"
        response.headers["x-amzn-RequestId"] = request_id
        return response
