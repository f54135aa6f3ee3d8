"""The local workflow traced as deployed: every invocation's trace reaches the loopback daemon.

The app is the robustness suites' one (a synthesized app, an untrained real model), so this
needs no shared data; the photo is a generated 3 MB JPEG, the size that exposed
``read_object`` recording its bytes.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emulator.workflow import LocalWorkflow
from emulator.xray import DATAGRAM_LIMIT_BYTES, subsegment_names
from tests.robustness.support import local_record_app

# The AWS operations each function's own code makes; nothing of the orchestration may appear.
OPERATIONS = {
    "serialize_image": {"HeadObject", "GetObject"},
    "classify_image": {"InvokeEndpoint"},
    "filter_inferences": set(),
}
METHODS = {
    "serialize_image": {".head_existing_object", ".read_object"},
    "classify_image": {".invoke_endpoint"},
    "filter_inferences": set(),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return local_record_app(Path(tmp_path_factory.getbasetemp()) / "apps")


def photo_jpeg(width: int = 2048, height: int = 1536, seed: int = 0) -> bytes:
    """Gradients under noise: a JPEG of about 3 MB that decodes like a photo."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width)[None, :, None]
    y = np.linspace(0, 255, height)[:, None, None]
    pixels = (x * [1.0, 0.5, 0.2] + y * [0.1, 0.4, 0.8]) / 1.5
    pixels = pixels + rng.normal(0, 50, (height, width, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def handler_documents(listener) -> list[dict]:
    return [
        document
        for documents in listener.traces().values()
        for document in documents
        if document["name"] == "## lambda_handler"
    ]


def test_every_invocation_sends_one_trace_with_its_own_subsegments(app):
    photo = photo_jpeg()
    assert len(photo) > 2_800_000
    with LocalWorkflow(app.outdir, environment={"THRESHOLD": "0.5"}) as workflow:
        good = workflow.classify_bytes(photo, "incoming/photo.jpg")
        bad = workflow.classify_bytes(b"not an image", "incoming/notes.jpg")
        invocations = list(workflow.runtime.invocations)
        listener = workflow.xray
        listener.wait_for(lambda received: len(handler_documents(received)) >= len(invocations))
        traces = listener.traces()
        sizes = [datagram.size for datagram in listener.datagrams]
        malformed = list(listener.malformed)
        service_of = {
            function.name: function.environment["POWERTOOLS_SERVICE_NAME"]
            for function in workflow.spec.functions
        }

    assert (good.status, bad.status, bad.error) == ("SUCCEEDED", "FAILED", "InvalidImage")
    invoked = Counter(service_of[invocation.function_name] for invocation in invocations)
    assert invoked == {"serialize_image": 2, "classify_image": 1, "filter_inferences": 1}
    assert len(traces) == len(invocations)

    traced: Counter[str] = Counter()
    for documents in traces.values():
        names = subsegment_names(documents)
        (handler,) = [document for document in documents if document["name"] == "## lambda_handler"]
        service = handler["annotations"]["Service"]
        traced[service] += 1
        for method in METHODS[service]:
            assert any(name.endswith(method) for name in names), (service, method, names)
        operations = {document["aws"]["operation"] for document in documents if "aws" in document}
        assert operations == OPERATIONS[service], (service, operations)
    assert traced == invoked

    assert malformed == []
    assert max(sizes) < DATAGRAM_LIMIT_BYTES
