"""Traced as deployed: each handler's subsegments reach the daemon and none holds a large value.

A document over the daemon's 64 KB never arrives (the SDK cannot send it), so every test checks
both that the subsegments are there and that the datagrams stay small.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

import lambda_src.classify_image.handler as classify
import lambda_src.filter_inferences.handler as filter_inferences
import lambda_src.serialize_image.handler as serialize
from emulator.xray import DATAGRAM_LIMIT_BYTES, subsegment_names
from tests.xray_support import LAMBDA_SRC

BUCKET = "scones-images"
SMALL_DATAGRAM_BYTES = 4096


def traced_names(listener) -> list[str]:
    """The names of every subsegment received, once ``## lambda_handler`` (the last) is in."""
    listener.wait_for(lambda received: "## lambda_handler" in names_of(received))
    return names_of(listener)


def names_of(listener) -> list[str]:
    return [
        name for documents in listener.traces().values() for name in subsegment_names(documents)
    ]


def documents_named(listener, suffix: str) -> list[dict]:
    return [
        document
        for documents in listener.traces().values()
        for document in documents
        if document["name"].endswith(suffix)
    ]


def test_serialize_records_neither_the_object_nor_the_image_passed_on(
    s3, lambda_context, xray_daemon, noise_image, encode_image
):
    photo = encode_image(noise_image(1200, 900), "JPEG", quality=95)
    assert len(photo) > 1_000_000
    s3.put_object(Bucket=BUCKET, Key="incoming/photo.jpg", Body=photo)
    result = serialize.lambda_handler(
        {"s3_bucket": BUCKET, "s3_key": "incoming/photo.jpg"}, lambda_context
    )
    assert len(result["image_data"]) > DATAGRAM_LIMIT_BYTES

    names = traced_names(xray_daemon)
    for expected in (".head_existing_object", ".read_object", "## lambda_handler"):
        assert any(name.endswith(expected) for name in names), (expected, names)
    operations = [
        document.get("aws", {}).get("operation") for document in documents_named(xray_daemon, "s3")
    ]
    assert {"HeadObject", "GetObject"} <= set(operations)
    assert xray_daemon.largest() < SMALL_DATAGRAM_BYTES
    assert list(xray_daemon.malformed) == []
    (read,) = documents_named(xray_daemon, ".read_object")
    assert "metadata" not in read


def test_a_rejected_image_is_traced_as_a_fault_with_its_error(s3, lambda_context, xray_daemon):
    s3.put_object(Bucket=BUCKET, Key="incoming/not-an-image.jpg", Body=b"plain text" * 1000)
    with pytest.raises(serialize.InvalidImage):
        serialize.lambda_handler(
            {"s3_bucket": BUCKET, "s3_key": "incoming/not-an-image.jpg"}, lambda_context
        )
    traced_names(xray_daemon)
    (handler,) = documents_named(xray_daemon, "## lambda_handler")
    assert handler["fault"] is True
    assert [exception["type"] for exception in handler["cause"]["exceptions"]] == ["InvalidImage"]
    assert xray_daemon.largest() < SMALL_DATAGRAM_BYTES


def test_classify_records_the_inferences_not_the_endpoint_body(
    lambda_context, xray_daemon, fake_endpoint, encode_image, noise_image
):
    padded = b"[0.25, 0.75]" + b" " * (2 * DATAGRAM_LIMIT_BYTES)  # valid JSON, 128 KB
    fake_endpoint.body = padded
    png = encode_image(noise_image(32, 32), "PNG")
    image_data = base64.b64encode(png).decode()
    event = {
        "s3_bucket": BUCKET,
        "s3_key": "incoming/a.png",
        "image_data": image_data,
        "content_type": "image/png",
    }
    assert classify.lambda_handler(event, lambda_context)["inferences"] == [0.25, 0.75]

    names = traced_names(xray_daemon)
    assert any(name.endswith(".invoke_endpoint") for name in names), names
    assert "runtime.sagemaker" in names
    (handler,) = documents_named(xray_daemon, "## lambda_handler")
    (metadata,) = handler["metadata"].values()  # under the service's namespace
    recorded = metadata["lambda_handler response"]
    assert recorded["inferences"] == [0.25, 0.75]
    assert xray_daemon.largest() < SMALL_DATAGRAM_BYTES


def test_filter_traces_only_its_handler(lambda_context, xray_daemon, monkeypatch):
    monkeypatch.setenv("THRESHOLD", "0.5")
    event = {"s3_bucket": BUCKET, "s3_key": "incoming/a.png", "inferences": [0.1, 0.9]}
    assert filter_inferences.lambda_handler(event, lambda_context)["label"] == "motorcycle"
    assert traced_names(xray_daemon) == ["## lambda_handler"]


def _patched_modules(function: str) -> list[str]:
    """The modules the X-Ray SDK patched when a fresh Lambda process imported ``function``
    (its folder first on the import path, as the asset root is in Lambda)."""
    folder = LAMBDA_SRC / function
    script = (
        f"import json, sys; sys.path.insert(0, {str(folder)!r}); import handler; "
        "from aws_xray_sdk.core import patcher; "
        "print(json.dumps(sorted(patcher._PATCHED_MODULES)))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=folder,
        env={"LAMBDA_TASK_ROOT": str(folder), "PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout.splitlines()[-1])


def test_only_functions_that_call_aws_patch_botocore():
    assert "botocore" in _patched_modules("serialize_image")
    assert "botocore" in _patched_modules("classify_image")
    assert _patched_modules("filter_inferences") == []
