"""A loopback stand-in for the X-Ray daemon, and the process's X-Ray recorder set up as Lambda's.

In Lambda the runtime gives each function ``AWS_XRAY_DAEMON_ADDRESS`` and, per invocation,
``_X_AMZN_TRACE_ID`` (``Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=1``). The X-Ray SDK,
imported with ``LAMBDA_TASK_ROOT`` set, records under a facade segment that Lambda itself sends
and streams every finished subsegment to the daemon as one UDP datagram: the header
``{"format":"json","version":1}``, a newline and the JSON document. The daemon takes documents
of at most 64 KB; a larger one does not even leave the socket (the SDK logs and drops it).

``XRayListener`` binds 127.0.0.1:0 and keeps every datagram it receives, parsed.
``invocation_trace_header()`` is the header the local runtime sets for one invocation; each
sandbox is a Lambda worker of its own, so its SDK behaves as in Lambda. ``lambda_recorder``
sets the recorder of a process that runs handlers in-process (the handler tests,
``bench/tracing.py``) up as a fresh Lambda worker's.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aws_xray_sdk.core.lambda_launcher import LAMBDA_TRACE_HEADER_KEY, LambdaContext
from aws_xray_sdk.core.models.dummy_entities import DummySegment
from aws_xray_sdk.core.models.trace_header import TraceHeader

DATAGRAM_LIMIT_BYTES = 64 * 1024
PROTOCOL_HEADER = {"format": "json", "version": 1}
_RECEIVE_BYTES = 65536
_REMEMBERED_INVOCATIONS = 1024

# The trace roots of the latest invocations and the threads that run them.
_invocation_threads: OrderedDict[str, int] = OrderedDict()
_invocation_lock = threading.Lock()


def invocation_trace_header() -> str:
    """A fresh sampled trace header for one invocation run by the calling thread."""
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    with _invocation_lock:
        _invocation_threads[root] = threading.get_ident()
        while len(_invocation_threads) > _REMEMBERED_INVOCATIONS:
            _invocation_threads.popitem(last=False)
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=1"


class InvocationContext(LambdaContext):
    """The SDK's Lambda context, recording only on the thread that runs the invocation.

    In Lambda nothing but the function runs in its process. A process that runs handlers
    in-process may also run moto, threads and other callers, sharing ``_X_AMZN_TRACE_ID`` and
    the patched botocore; their calls belong to no function's trace, so they see a no-op
    segment.
    """

    def _refresh_context(self) -> None:
        root = TraceHeader.from_header_str(os.getenv(LAMBDA_TRACE_HEADER_KEY)).root
        if root is None or _invocation_threads.get(root) != threading.get_ident():
            self._local.segment = DummySegment()
            self._local.entities = []
            return
        super()._refresh_context()

    def put_subsegment(self, subsegment: Any) -> None:
        if isinstance(self.get_trace_entity(), DummySegment):
            return  # no invocation on this thread: nothing to record (quietly, unlike the SDK)
        super().put_subsegment(subsegment)


@contextmanager
def _daemon_address_variable(address: str) -> Iterator[None]:
    saved = os.environ.get("AWS_XRAY_DAEMON_ADDRESS")
    os.environ["AWS_XRAY_DAEMON_ADDRESS"] = address
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("AWS_XRAY_DAEMON_ADDRESS", None)
        else:
            os.environ["AWS_XRAY_DAEMON_ADDRESS"] = saved


@contextmanager
def lambda_recorder(address: str) -> Iterator[Any]:
    """Put the process's X-Ray state where a fresh Lambda worker starts.

    A worker imports the SDK with ``LAMBDA_TASK_ROOT`` set: the Lambda context (sampling is
    the trace header's decision), every finished subsegment streamed, the UDP emitter aimed at
    ``AWS_XRAY_DAEMON_ADDRESS``, the SDK enabled and Powertools' shared Tracer settings at
    their defaults. In one local process an earlier import (outside Lambda, where Powertools
    disables the SDK) may have changed all of these. On exit all but the context are
    restored: botocore stays patched once a handler was imported, and outside an invocation
    ``InvocationContext`` records nothing, quietly, where the SDK's default context would log
    an error for every AWS call.
    """
    from aws_lambda_powertools import Tracer
    from aws_xray_sdk import global_sdk_config
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter

    recorder = xray_recorder
    saved = (
        recorder.emitter,
        recorder.streaming_threshold,
        global_sdk_config.sdk_enabled(),
        Tracer._config,
    )
    with _daemon_address_variable(address):
        recorder.emitter = UDPEmitter()  # reads AWS_XRAY_DAEMON_ADDRESS, as at a worker's start
    recorder.context = InvocationContext()
    recorder.streaming_threshold = 0
    global_sdk_config.set_sdk_enabled(True)
    Tracer._reset_config()
    try:
        yield recorder
    finally:
        recorder.emitter, recorder.streaming_threshold = saved[:2]
        global_sdk_config.set_sdk_enabled(saved[2])
        Tracer._config = saved[3]


@dataclass(frozen=True)
class Datagram:
    """One datagram as received: its size, the protocol header and the document."""

    size: int
    header: dict[str, Any]
    document: dict[str, Any]


class XRayListener:
    """Receives X-Ray daemon datagrams on 127.0.0.1; use as a context manager.

    ``datagrams`` holds the latest ``keep`` well-formed ones in arrival order (a long local
    run must not grow without bound), ``malformed`` the raw bytes of any other (a wrong header,
    not JSON).
    """

    def __init__(self, keep: int = 20_000) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self.datagrams: deque[Datagram] = deque(maxlen=keep)
        self.malformed: deque[bytes] = deque(maxlen=keep)
        self._arrived = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def __enter__(self) -> XRayListener:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> XRayListener:
        self._thread = threading.Thread(target=self._receive, name="xray-listener", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping = True
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as waker:
                waker.sendto(b"", self._socket.getsockname())  # closing would not end recv()
            self._thread.join()
            self._thread = None
        self._socket.close()

    def _receive(self) -> None:
        while True:
            data = self._socket.recv(_RECEIVE_BYTES)
            if self._stopping:
                return
            with self._arrived:
                self._record(data)
                self._arrived.notify_all()

    def _record(self, data: bytes) -> None:
        first, newline, rest = data.partition(b"\n")
        try:
            header = json.loads(first)
            document = json.loads(rest)
        except ValueError:
            self.malformed.append(data)
            return
        if not newline or header != PROTOCOL_HEADER or not isinstance(document, dict):
            self.malformed.append(data)
            return
        self.datagrams.append(Datagram(len(data), header, document))

    def clear(self) -> None:
        with self._arrived:
            self.datagrams.clear()
            self.malformed.clear()

    def wait_for(self, condition: Callable[[XRayListener], bool], timeout: float = 5.0) -> bool:
        """Wait until ``condition(self)`` holds (datagrams arrive asynchronously)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: condition(self), timeout)

    def traces(self) -> dict[str, list[dict[str, Any]]]:
        """The documents received, by trace id, in arrival order."""
        with self._arrived:
            found: dict[str, list[dict[str, Any]]] = {}
            for datagram in self.datagrams:
                found.setdefault(datagram.document.get("trace_id", ""), []).append(
                    datagram.document
                )
            return found

    def largest(self) -> int:
        """The size in bytes of the largest datagram received (0 if none)."""
        with self._arrived:
            return max((datagram.size for datagram in self.datagrams), default=0)


def subsegment_names(documents: list[dict[str, Any]]) -> list[str]:
    """Every (sub)segment name in ``documents``, nested ones included, depth first."""
    names: list[str] = []
    pending = list(reversed(documents))
    while pending:
        document = pending.pop()
        names.append(document.get("name", ""))
        pending.extend(reversed(document.get("subsegments", [])))
    return names
