"""The model artifact through the inference container's own serving code, and the emulator.

The artifact is built as training packs it and unpacked as SageMaker does; TorchServe 0.12.0's
Python worker loads it with the handler of sagemaker-pytorch-inference 2.0.25 (the pins of the
PyTorch 2.6 CPU inference image) and answers predict frames (see ``torchserve_frontend``), with
network isolation as SageMaker runs it: every connection and name lookup of the process fails
while the worker loads and serves. Each request kind is also sent to the local endpoint, on the
container route and through InvokeEndpoint: same status, same body. Error bodies end with a
traceback whose frames differ (the toolkit's own, file paths), so for those the message line
and the exception line are compared.
"""

from __future__ import annotations

import io
import json
import re
import socket
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from emulator.endpoint import LocalEndpoint
from tests.robustness.support import untrained_model_archive
from tests.serving.torchserve_frontend import MODEL_NAME, Answer, container_worker
from training.evaluate import extract_artifact, load_inference_module


def _encoded(fmt: str) -> bytes:
    image = Image.new("RGB", (48, 40), (180, 40, 30))
    image.paste((20, 30, 200), (12, 8, 36, 32))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _photo() -> bytes:
    """A 640x480 JPEG with more detail than a thumbnail holds: the photo expert votes on it."""
    pixels = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


PNG, JPEG, PHOTO = _encoded("PNG"), _encoded("JPEG"), _photo()
NOT_AN_IMAGE = b"this is not an image"
TRUNCATED_PNG = PNG[: len(PNG) // 2]
# kind: (body, content type, accept, expected status, start of the expected message)
REQUESTS: dict[str, tuple[bytes, str, str | None, int, str]] = {
    "png": (PNG, "image/png", None, 200, ""),
    "jpeg": (JPEG, "image/jpeg", "application/json", 200, ""),
    "photo": (PHOTO, "image/jpeg", None, 200, ""),
    "x-image": (PNG, "application/x-image", "*/*", 200, ""),
    "not-an-image": (
        NOT_AN_IMAGE,
        "image/png",
        None,
        400,
        "request body is not a decodable PNG/JPEG image (20 bytes: no image format recognized)",
    ),
    "truncated": (
        TRUNCATED_PNG,
        "image/png",
        None,
        400,
        f"request body is not a decodable PNG/JPEG image ({len(TRUNCATED_PNG)} bytes: ",
    ),
    "empty": (b"", "image/jpeg", None, 400, "body is empty or text, expected image bytes"),
    "text": (b"a bicycle", "text/plain", None, 415, "content type 'text/plain' is not supported"),
    "accept-csv": (PNG, "image/png", "text/csv", 406, "accept 'text/csv' is not supported"),
}
OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>")


def _emulator_answers(endpoint: LocalEndpoint) -> dict[str, tuple[Answer, dict[str, Any]]]:
    """Each request on the container route (an Answer) and on InvokeEndpoint (its JSON)."""
    answers = {}
    for kind, (body, content_type, accept, _, _) in REQUESTS.items():
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
        container = _post(f"{endpoint.url}/invocations", body, headers)
        invoked = _post(f"{endpoint.url}/endpoints/scones/invocations", body, headers)
        answers[kind] = (container, {"status": invoked.status, "body": invoked.body})
    return answers


def _post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(
                response.status, response.reason, response.headers["Content-Type"], response.read()
            )
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.reason, error.headers["Content-Type"], error.read())


def _isolated(*args: Any, **kwargs: Any) -> Any:
    raise OSError("network isolation: this process may not open a connection")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """The default recipe's artifact, photo expert and probe included, untrained weights."""
    directory = tmp_path_factory.mktemp("toolkit-contract") / "artifact"
    return untrained_model_archive(directory, probe_votes=True)


@pytest.fixture(scope="module")
def answers(archive, tmp_path_factory) -> dict[str, dict[str, Any]]:
    """Every request kind answered by the emulator, then by the toolkit, on one artifact."""
    root = tmp_path_factory.mktemp("toolkit-worker")
    assert "sagemaker_inference" not in sys.modules  # the emulator runs as it does locally
    with LocalEndpoint(archive) as endpoint:
        emulated = _emulator_answers(endpoint)
    inference_before = sys.modules.get("inference")  # other tests import training/model/
    with pytest.MonkeyPatch.context() as isolation:
        for name in ("connect", "connect_ex", "sendto"):
            isolation.setattr(socket.socket, name, _isolated)
        isolation.setattr(socket, "getaddrinfo", _isolated)
        with pytest.raises(OSError, match="network isolation"):
            urllib.request.urlopen("http://example.com", timeout=5)
        with container_worker(archive, root / "container") as worker:
            assert (worker.load_code, worker.load_message) == (200, f"loaded model {MODEL_NAME}")
            unpacked = root / "container" / "opt" / "ml" / "model" / "code" / "inference.py"
            assert worker.entry_point_file == unpacked
            toolkit = {
                kind: worker.invoke(body, content_type, accept)
                for kind, (body, content_type, accept, _, _) in REQUESTS.items()
            }
    assert worker.exit_code == 0  # the worker's own exit when the frontend disconnects
    assert "ts" not in sys.modules and sys.modules.get("inference") is inference_before
    return {
        kind: {
            "toolkit": toolkit[kind],
            "container": emulated[kind][0],
            "invoke": emulated[kind][1],
        }
        for kind in REQUESTS
    }


def error_shape(body: str) -> tuple[str, str, str]:
    """An error body as the toolkit writes it: message line, traceback, exception line."""
    message, _, trace = body.partition("\n")
    lines = trace.rstrip("\n").splitlines()
    exception_type, _, text = lines[-1].partition(": ")
    return message, lines[0], f"{exception_type.rsplit('.', 1)[-1]}: {text}"


@pytest.mark.parametrize("kind", [kind for kind, spec in REQUESTS.items() if spec[3] == 200])
def test_images_get_200_and_the_two_probabilities(answers, kind):
    toolkit = answers[kind]["toolkit"]
    assert (toolkit.status, toolkit.content_type) == (200, "application/json")
    probabilities = json.loads(toolkit.body)
    assert len(probabilities) == 2 and sum(probabilities) == pytest.approx(1.0)
    assert all(0.0 < p < 1.0 for p in probabilities)


@pytest.mark.parametrize("kind", [kind for kind, spec in REQUESTS.items() if spec[3] != 200])
def test_bad_requests_get_their_status_and_a_readable_error_body(answers, kind):
    status, expected_message = REQUESTS[kind][3], REQUESTS[kind][4]
    toolkit = answers[kind]["toolkit"]
    assert toolkit.status == status
    assert toolkit.content_type is None  # TorchServe sends the error body without one
    message, trace_header, exception_line = error_shape(toolkit.body.decode())
    assert message.startswith(expected_message)
    assert toolkit.phrase == message  # the status line's reason phrase
    assert trace_header == "Traceback (most recent call last):"
    assert exception_line == f"RequestError: {message}"  # not the (status, message) tuple


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_no_error_body_shows_an_object_repr(answers, kind):
    for body in (answers[kind]["toolkit"].body, answers[kind]["invoke"]["body"]):
        assert not OBJECT_REPR.search(body.decode()), body.decode()


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_the_emulator_container_route_answers_as_the_toolkit(answers, kind):
    toolkit, emulated = answers[kind]["toolkit"], answers[kind]["container"]
    assert (emulated.status, emulated.content_type) == (toolkit.status, toolkit.content_type)
    if toolkit.status == 200:
        assert json.loads(emulated.body) == pytest.approx(json.loads(toolkit.body), abs=1e-6)
    else:
        assert error_shape(emulated.body.decode()) == error_shape(toolkit.body.decode())


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_invoke_endpoint_carries_the_toolkit_answer(answers, kind):
    toolkit, invoked = answers[kind]["toolkit"], answers[kind]["invoke"]
    if toolkit.status == 200:
        assert invoked["status"] == 200
        assert json.loads(invoked["body"]) == pytest.approx(json.loads(toolkit.body), abs=1e-6)
        return
    error = json.loads(invoked["body"])
    assert invoked["status"] == 424 and error["OriginalStatusCode"] == toolkit.status
    assert error_shape(error["OriginalMessage"]) == error_shape(toolkit.body.decode())


def test_the_artifact_holds_the_photo_expert_the_probe_and_their_weights(archive):
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        config = json.load(tar.extractfile("model-config.json"))
    assert {"code/photo_expert.py", "photo-expert.pth"} <= names
    assert {"code/thumbnail_probe.py", "thumbnail-probe.pth"} <= names
    assert config["photo_expert"] == "photo-expert.pth"
    assert config["thumbnail_probe"] == "thumbnail-probe.pth"


def test_a_thumbnail_gets_the_probes_vote_inside_the_container(answers, archive, tmp_path):
    """The container's answer to a 48x40 PNG is ours and the thumbnail probe's log-odds on
    the expert's features of the thumbnail enlarged, not ours alone."""
    model_dir = extract_artifact(archive, tmp_path)
    inference = load_inference_module(model_dir / "code")
    model = inference.model_fn(str(model_dir))
    data = inference.input_fn(PNG, "image/png")
    assert data.photo is None
    with torch.inference_mode():
        ours = model.thumbnails(data.thumbnail)[0, 1]
        enlarged = torch.nn.functional.interpolate(
            data.thumbnail, size=(240, 240), mode="bicubic", align_corners=False
        ).clamp(0, 1)
        probe = model.thumbnail_probe(model.photo_expert.features(enlarged))[0]
    expected = float(torch.sigmoid(torch.logit(ours) + probe))
    served = json.loads(answers["png"]["toolkit"].body)[1]
    assert served == pytest.approx(expected, abs=1e-5)
    assert abs(served - float(ours)) > 0.01


def test_a_photo_is_answered_by_the_photo_expert_inside_the_container(answers, archive, tmp_path):
    """The container's answer to a photo is the expert's log-odds as a probability, not ours."""
    model_dir = extract_artifact(archive, tmp_path)
    inference = load_inference_module(model_dir / "code")
    model = inference.model_fn(str(model_dir))
    data = inference.input_fn(PHOTO, "image/jpeg")
    assert data.photo is not None
    with torch.inference_mode():
        ours = model.thumbnails(data.thumbnail)[0, 1]
        expert = model.photo_expert(data.photo)[0]
    expected = float(torch.sigmoid(expert))
    served = json.loads(answers["photo"]["toolkit"].body)[1]
    assert served == pytest.approx(expected, abs=1e-5)
    assert abs(served - float(ours)) > 0.01


TOOLKIT_ERROR_STUB = """
import json

from sagemaker_inference.errors import GenericInferenceToolkitError


def model_fn(model_dir):
    return "stub"


def input_fn(body, content_type):
    if body == b"refuse":
        raise GenericInferenceToolkitError(422, "the stub refuses this body")
    raise ValueError("the stub cannot read this body")


def predict_fn(data, model):
    return data


def output_fn(prediction, accept):
    return json.dumps(prediction)
"""


def _stub_archive(path: Path, inference_source: str) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        data = inference_source.encode()
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(("body", "status"), [(b"refuse", 422), (b"other", 500)])
def test_the_toolkit_error_class_itself_gets_the_same_body_from_both(tmp_path, body, status):
    """A model raising the toolkit's own error (whose text is a tuple), or any exception."""
    archive = _stub_archive(tmp_path / "model.tar.gz", TOOLKIT_ERROR_STUB)
    with container_worker(archive, tmp_path / "container") as worker:
        toolkit = worker.invoke(body, "application/octet-stream")
        with LocalEndpoint(archive) as endpoint:  # imports the toolkit's class, as inside
            emulated = _post(
                f"{endpoint.url}/invocations", body, {"Content-Type": "application/octet-stream"}
            )
    assert toolkit.status == emulated.status == status
    assert error_shape(emulated.body.decode()) == error_shape(toolkit.body.decode())
    assert not error_shape(toolkit.body.decode())[0].startswith("(")
