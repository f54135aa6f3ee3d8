"""Tracing for the handler tests as in Lambda: on, and aimed at a loopback X-Ray listener.

Powertools turns its Tracer off outside Lambda (no ``LAMBDA_TASK_ROOT``) and then also
disables the X-Ray SDK for the whole process; only a Tracer made inside Lambda patches
botocore. So the handlers are imported as the Lambda runtime imports them
(``import_in_lambda``), and every handler test runs in an invocation (``xray_daemon``): a
fresh ``_X_AMZN_TRACE_ID``, ``AWS_XRAY_DAEMON_ADDRESS`` set and the recorder reset to a
Lambda worker's state, restored afterwards. A conftest that imports ``xray_daemon`` makes it
apply to every test of its folder.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from emulator.xray import XRayListener, invocation_trace_header, lambda_recorder

LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"


def import_in_lambda(name: str) -> ModuleType:
    """Import ``name`` with ``LAMBDA_TASK_ROOT`` set, as the runtime's init does."""
    saved = os.environ.get("LAMBDA_TASK_ROOT")
    os.environ["LAMBDA_TASK_ROOT"] = str(LAMBDA_SRC)
    try:
        return importlib.import_module(name)
    finally:
        if saved is None:
            os.environ.pop("LAMBDA_TASK_ROOT", None)
        else:
            os.environ["LAMBDA_TASK_ROOT"] = saved


@pytest.fixture(scope="session")
def xray_listener() -> Iterator[XRayListener]:
    with XRayListener() as listener:
        yield listener


@pytest.fixture(autouse=True)
def xray_daemon(xray_listener, monkeypatch) -> Iterator[XRayListener]:
    """The listener, emptied, receiving what this test's invocation traces."""
    xray_listener.clear()
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(LAMBDA_SRC))
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", xray_listener.address)
    monkeypatch.setenv("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", invocation_trace_header())
    with lambda_recorder(xray_listener.address):
        yield xray_listener
