"""The loopback daemon and the Lambda-like recorder of emulator/xray.py."""

from __future__ import annotations

import socket
import threading

import pytest
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
from aws_xray_sdk.core.models.segment import Segment
from aws_xray_sdk.core.models.subsegment import Subsegment
from aws_xray_sdk.core.models.traceid import TraceId

from emulator.xray import XRayListener, invocation_trace_header, lambda_recorder


@pytest.fixture
def listener():
    with XRayListener() as started:
        yield started


def test_the_sdks_datagrams_are_parsed_and_anything_else_is_kept_aside(listener, monkeypatch):
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", listener.address)
    trace_id = TraceId().to_id()
    subsegment = Subsegment("work", "local", Segment("test", traceid=trace_id))
    subsegment.close()
    UDPEmitter().send_entity(subsegment)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        host, port = listener.address.split(":")
        raw.sendto(b'{"format": "xml", "version": 1}\n{}', (host, int(port)))
        raw.sendto(b"no header at all", (host, int(port)))
    assert listener.wait_for(lambda received: len(received.malformed) == 2)
    assert listener.wait_for(lambda received: len(received.datagrams) == 1)
    (document,) = listener.traces()[trace_id]
    assert (document["name"], document["type"]) == ("work", "subsegment")
    assert listener.largest() == listener.datagrams[0].size > len(document["name"])


def test_only_the_invoking_thread_records_into_the_invocations_trace(listener, monkeypatch):
    header = invocation_trace_header()
    root = header.split(";")[0].removeprefix("Root=")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
    with lambda_recorder(listener.address) as recorder:

        def work(name: str) -> None:
            with recorder.in_subsegment(name):
                pass

        other = threading.Thread(target=work, args=("other thread",))
        other.start()
        other.join()
        work("invoking thread")
        monkeypatch.delenv("_X_AMZN_TRACE_ID")
        work("after the invocation")
    assert listener.wait_for(lambda received: len(received.datagrams) >= 1)
    assert [document["name"] for document in listener.traces()[root]] == ["invoking thread"]
    assert list(listener.traces()) == [root]
