"""TorchServe's frontend half, in Python, driving the container's real Python worker.

In the container, TorchServe's Java frontend starts ``ts/model_service_worker.py``, sends it a
load frame naming the model directory and the toolkit's handler, then a predict frame per
batch, and turns each answer frame into the HTTP response. Here the worker class of
TorchServe 0.12.0 runs on a thread, its ``handle_connection`` reading a socketpair; this module
writes the frames as the frontend does (``ModelRequestEncoder``, in the layout the 0.12.0
worker's ``otf_message_handler`` decodes) and reads the answer frame that
``create_predict_response`` writes. The handler, the Python path and the worker environment
are the ones the toolkit (sagemaker-pytorch-inference 2.0.25) configures TorchServe with.
"""

from __future__ import annotations

import socket
import struct
import sys
import tarfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pytest

TOOLKIT_DIR = Path(__file__).resolve().parents[2] / "build" / "serving-toolkit"
# What sagemaker_pytorch_serving_container.torchserve writes as default_service_handler.
HANDLER = "sagemaker_pytorch_serving_container.handler_service:handle"
MODEL_NAME = "model"


@dataclass(frozen=True)
class Answer:
    """One HTTP response as the frontend sends it: status line, Content-Type, body."""

    status: int
    phrase: str
    content_type: str | None
    body: bytes


def require_toolkit() -> Path:
    """The installed toolkit folder; a failure (not a skip) that says how to get it."""
    if not (TOOLKIT_DIR / ".installed").exists():
        pytest.fail(
            f"the serving toolkit is not installed in {TOOLKIT_DIR}: run `make setup` "
            "(it installs requirements-serving.txt there with pip --no-deps)"
        )
    return TOOLKIT_DIR


def unpack_as_sagemaker(archive: Path, root: Path) -> Path:
    """Extract ``model.tar.gz`` into ``root/opt/ml/model`` as SageMaker does; that folder."""
    model_dir = root / "opt" / "ml" / "model"
    model_dir.mkdir(parents=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(model_dir, filter="data")
    return model_dir


def toolkit_properties() -> dict[str, str]:
    """The TorchServe properties the toolkit starts the model server with."""
    path = TOOLKIT_DIR / "sagemaker_pytorch_serving_container" / "etc" / "default-ts.properties"
    lines = path.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def _field(data: bytes) -> bytes:
    return struct.pack("!i", len(data)) + data


def load_frame(model_dir: Path) -> bytes:
    """The frontend's load command: name, path, batch size 1, handler, CPU, no envelope."""
    return b"".join(
        [
            b"L",
            _field(MODEL_NAME.encode()),
            _field(str(model_dir).encode()),
            struct.pack("!i", 1),
            _field(HANDLER.encode()),
            struct.pack("!i", -1),
            _field(b""),
            struct.pack("!?", True),
        ]
    )


def predict_frame(request_id: str, headers: dict[str, str], body: bytes) -> bytes:
    """A batch of one request: its HTTP headers, and the raw body as parameter ``body``."""
    parts = [b"I", _field(request_id.encode())]
    for name, value in headers.items():
        parts += [_field(name.encode()), _field(value.encode())]
    parts.append(struct.pack("!i", -1))
    content_type = headers.get("Content-Type", "")
    parts += [_field(b"body"), _field(content_type.encode()), _field(body)]
    parts += [struct.pack("!i", -1), struct.pack("!i", -1)]
    return b"".join(parts)


def _read_int(stream: BinaryIO) -> int:
    return struct.unpack("!i", _read_exactly(stream, 4))[0]


def _read_exactly(stream: BinaryIO, length: int) -> bytes:
    data = stream.read(length)
    if len(data) != length:
        raise EOFError(f"worker closed the connection ({len(data)} of {length} bytes)")
    return data


def _read_field(stream: BinaryIO) -> bytes:
    return _read_exactly(stream, _read_int(stream))


def read_answers(stream: BinaryIO) -> tuple[int, str, list[Answer]]:
    """A worker answer frame: batch code and message, then each request's response."""
    code = _read_int(stream)
    message = _read_field(stream).decode()
    answers = []
    while (length := _read_int(stream)) != -1:
        _read_exactly(stream, length)  # the request id
        content_type = _read_field(stream).decode() or None
        status = _read_int(stream)
        phrase = _read_field(stream).decode()
        for _ in range(_read_int(stream)):  # response headers
            _read_field(stream), _read_field(stream)
        answers.append(Answer(status, phrase, content_type, _read_field(stream)))
    return code, message, answers


class WorkerConnection:
    """A TorchServe worker on a thread with the model loaded; ``invoke`` sends one request."""

    def __init__(self, model_dir: Path) -> None:
        from ts.model_service_worker import TorchModelServiceWorker

        metrics = TOOLKIT_DIR / "ts" / "configs" / "metrics.yaml"
        self.worker = TorchModelServiceWorker("tcp", None, "127.0.0.1", 0, str(metrics))
        self.worker.sock.close()  # the frontend's connection comes through the socketpair
        self._frontend, worker_end = socket.socketpair()
        self._stream = self._frontend.makefile("rb")
        self.exit_code: Any = None
        self._thread = threading.Thread(target=self._serve, args=(worker_end,), daemon=True)
        self._thread.start()
        self._frontend.sendall(load_frame(model_dir))
        self.load_code, self.load_message, _ = read_answers(self._stream)

    def _serve(self, connection: socket.socket) -> None:
        try:
            self.worker.handle_connection(connection)
        except SystemExit as stop:  # the worker's way out when the frontend disconnects
            self.exit_code = stop.code
        finally:
            connection.close()

    @property
    def entry_point_file(self) -> Path:
        """Where the toolkit imported the user module (``SAGEMAKER_PROGRAM``) from."""
        return Path(sys.modules["inference"].__file__ or "")

    def invoke(self, body: bytes, content_type: str, accept: str | None = None) -> Answer:
        headers = {"Content-Type": content_type}
        if accept is not None:
            headers["Accept"] = accept
        self._frontend.sendall(predict_frame(str(uuid.uuid4()), headers, body))
        code, message, answers = read_answers(self._stream)
        assert (code, len(answers)) == (200, 1), f"batch failed: {code} {message}"
        return answers[0]

    def close(self) -> None:
        """Disconnect as the frontend does; the worker then exits with code 0."""
        self._stream.close()
        self._frontend.close()
        self._thread.join(timeout=10)


@contextmanager
def container_worker(archive: Path, root: Path) -> Iterator[WorkerConnection]:
    """The archive unpacked as SageMaker does, served by the toolkit in a TorchServe worker.

    The worker process's set-up, applied to this process and undone afterwards: the Python
    path the frontend gives it (the toolkit's ``code/`` folder, then the model directory),
    the model directory as working directory, the toolkit's TorchServe properties as
    environment, and the modules it imported.
    """
    toolkit = require_toolkit()
    model_dir = unpack_as_sagemaker(archive, root)
    with pytest.MonkeyPatch.context() as patch:
        for name in _shadowing_modules(model_dir / "code", toolkit):
            patch.delitem(sys.modules, name)  # a fresh worker process has none of them
        modules_before = set(sys.modules)
        for folder in (model_dir, model_dir / "code", toolkit):
            patch.syspath_prepend(str(folder))
        patch.chdir(model_dir)
        patch.setenv("PYTHONPATH", str(model_dir / "code"))
        patch.setenv("SAGEMAKER_PROGRAM", "inference.py")
        decode = toolkit_properties()["decode_input_request"]
        patch.setenv("TS_DECODE_INPUT_REQUEST", decode)
        connection = WorkerConnection(model_dir)
        try:
            yield connection
        finally:
            connection.close()
            _forget_modules(set(sys.modules) - modules_before, (toolkit, model_dir))


def _shadowing_modules(*folders: Path) -> list[str]:
    """Modules already imported under a name that the worker imports from ``folders``."""
    tops = {path.stem for folder in folders for path in folder.iterdir()}
    return [name for name in sys.modules if name.split(".", 1)[0] in tops]


def _forget_modules(names: set[str], folders: tuple[Path, ...]) -> None:
    """Drop the modules loaded from ``folders``, so later tests import their own."""
    prefixes = tuple(str(folder) for folder in folders)
    for name in names:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(prefixes):
            del sys.modules[name]
