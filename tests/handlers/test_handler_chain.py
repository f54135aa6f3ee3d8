"""The three handlers chained in-process: each one's output is the next one's input."""

from __future__ import annotations

import ast
import importlib.util
import io
import json
from pathlib import Path

import pytest
from PIL import Image

import lambda_src.classify_image.handler as classify
import lambda_src.filter_inferences.handler as filter_inferences
import lambda_src.serialize_image.handler as serialize

BUCKET = "scones-images"
STEP_FUNCTIONS_PAYLOAD_LIMIT = 256 * 1024
LAMBDA_SRC = Path(serialize.__file__).resolve().parents[1]


def eventbridge_event(key: str) -> dict:
    return {
        "version": "0",
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 1}},
    }


def through_step_functions(payload: dict) -> dict:
    """What the state machine hands on: JSON text under the payload limit."""
    text = json.dumps(payload)
    assert len(text.encode()) < STEP_FUNCTIONS_PAYLOAD_LIMIT
    return json.loads(text)


def test_an_uploaded_photo_is_serialized_classified_and_filtered(
    s3, fake_endpoint, lambda_context, encode_image, noise_image, monkeypatch
):
    monkeypatch.setenv("THRESHOLD", "0.8")
    photo = noise_image(1600, 1200, seed=7)
    s3.put_object(
        Bucket=BUCKET, Key="incoming/ride 1.jpg", Body=encode_image(photo, "JPEG", quality=85)
    )
    received: list[Image.Image] = []

    def check_model_input(request) -> None:
        assert request.headers["Content-Type"] in (b"image/jpeg", "image/jpeg")
        image = Image.open(io.BytesIO(request.body), formats=["JPEG"])
        image.load()
        received.append(image)

    fake_endpoint.on_request = check_model_input
    fake_endpoint.reply_json([0.1, 0.9])

    serialized = through_step_functions(
        serialize.lambda_handler(eventbridge_event("incoming/ride 1.jpg"), lambda_context)
    )
    classified = through_step_functions(classify.lambda_handler(serialized, lambda_context))
    filtered = through_step_functions(filter_inferences.lambda_handler(classified, lambda_context))

    [model_input] = received
    assert (model_input.format, model_input.mode, model_input.size) == ("JPEG", "RGB", (384, 288))
    assert classified == {
        "s3_bucket": BUCKET,
        "s3_key": "incoming/ride 1.jpg",
        "inferences": [0.1, 0.9],
    }
    assert filtered == {**classified, "label": "motorcycle", "confidence": 0.9}


def test_low_confidence_stops_the_chain_with_a_typed_error(
    s3, fake_endpoint, lambda_context, encode_image, monkeypatch
):
    monkeypatch.setenv("THRESHOLD", "0.8")
    s3.put_object(
        Bucket=BUCKET,
        Key="incoming/blurry.png",
        Body=encode_image(Image.new("RGB", (64, 64), "gray"), "PNG"),
    )
    fake_endpoint.reply_json([0.55, 0.45])

    serialized = serialize.lambda_handler(
        {"s3_bucket": BUCKET, "s3_key": "incoming/blurry.png"}, lambda_context
    )
    classified = classify.lambda_handler(serialized, lambda_context)

    with pytest.raises(filter_inferences.LowConfidence, match="incoming/blurry.png"):
        filter_inferences.lambda_handler(classified, lambda_context)


@pytest.mark.parametrize("function", ["serialize_image", "classify_image", "filter_inferences"])
def test_each_handler_is_self_contained(function):
    """Loaded by path as a top-level module (as the Lambda runtime does), a handler imports
    only the modules beside it and its bundle's packages, never the repository's own
    (the sandboxed local mode proves the bundle side)."""
    folder = LAMBDA_SRC / function
    spec = importlib.util.spec_from_file_location(f"isolated_{function}", folder / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    assert callable(module.lambda_handler)
    for source in folder.glob("*.py"):
        imported = {
            (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
            for node in ast.walk(ast.parse(source.read_text()))
            if isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0)
            for alias in node.names
        }
        assert not imported & {"lambda_src", "stacks", "emulator", "training", "tests"}, source
    lines = (folder / "requirements.txt").read_text().splitlines()
    pins = dict(
        line.split("==", 1) for line in (raw.split("#")[0].strip() for raw in lines) if line
    )
    assert pins and all(version for version in pins.values()), "every requirement is pinned"
    powertools = [name for name in pins if name.startswith("aws-lambda-powertools")]
    assert [pins[name] for name in powertools] == ["3.37.0"]
    assert not {"boto3", "botocore"} & set(pins), "boto3 comes from the Lambda runtime"
    if function == "serialize_image":
        assert pins["pillow"] == "13.0.0"


def test_no_two_functions_share_a_module_name():
    """In Lambda each folder is its own asset root, but tests/conftest.py puts every folder on
    one import path: a module name in two folders would be imported once, from the first."""
    owners: dict[str, list[str]] = {}
    for folder in sorted(path for path in LAMBDA_SRC.iterdir() if path.is_dir()):
        for source in folder.glob("*.py"):
            if source.name != "handler.py":  # imported as lambda_src.<function>.handler
                owners.setdefault(source.stem, []).append(folder.name)
    assert "classify_errors" in owners and "serialize_settings" in owners
    assert {name: folders for name, folders in owners.items() if len(folders) > 1} == {}
