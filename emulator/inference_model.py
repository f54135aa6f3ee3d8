"""Serve a ``model.tar.gz`` the way the SageMaker PyTorch inference container does.

The container extracts the archive into the model directory, puts ``code/`` on
``sys.path``, imports the entry point (``inference.py``), calls ``model_fn(model_dir)`` once,
then per request ``input_fn(body, content_type)`` -> ``predict_fn(data, model)`` ->
``output_fn(prediction, accept)`` (or ``transform_fn`` when the module defines it). A hook may
take one more argument, the context, as in the toolkit. Bodies of UTF-8 content types reach
``input_fn`` as ``str``; an exception carrying ``status_code`` becomes that status, anything
else 500 (the toolkit honours ``status_code`` only on its own error class: a stub's plain
exception with one would be a 500 there). The error body is the toolkit's: the message (a
toolkit-style error's ``message``, any other exception's text), a newline, the traceback.
"""

from __future__ import annotations

import importlib.util
import inspect
import io
import json
import sys
import tarfile
import tempfile
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from emulator.errors import ModelLoadError
from training.record import ModelRecordError, local_artifact, read_json

UTF8_CONTENT_TYPES = ("application/json", "text/csv")
DEFAULT_ACCEPT = "application/json"
ANY_ACCEPT = "*/*"

_module_counter = 0
_module_counter_lock = threading.Lock()


class InferenceFailure(Exception):
    """What the container answers when a hook fails: a status, a message, the trace."""

    def __init__(self, status_code: int, message: str, trace: str) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.trace = trace

    @property
    def body(self) -> str:
        """The response body, as the toolkit's ``Transformer.handle_error`` writes it."""
        return f"{self.message}\n{self.trace}"


def _error_message(error: Exception) -> str:
    """A toolkit-style error's ``message`` (its ``str`` is a tuple); any other's ``str``."""
    message = getattr(error, "message", None)
    toolkit_style = hasattr(error, "status_code") and hasattr(error, "phrase")
    return message if toolkit_style and isinstance(message, str) else str(error)


@dataclass(frozen=True)
class InferenceResult:
    body: bytes
    content_type: str


def resolve_model_archive(path: Path) -> Path:
    """Return the ``model.tar.gz`` that ``path`` names (itself, or a model record's URL)."""
    if not path.exists():
        raise ModelLoadError(
            f"{path} does not exist: pass a model.tar.gz or the model record JSON that "
            "training writes (python training/train.py --local ...)"
        )
    if path.suffix != ".json":
        return path
    try:
        url = str(read_json(path, ["model_data_url"])["model_data_url"])
    except ModelRecordError as error:
        raise ModelLoadError(
            f"{path} is not a model record with a model_data_url: {error}"
        ) from error
    archive = local_artifact(path, url)
    if archive is None:
        raise ModelLoadError(
            f"{path} points at {url}: the local endpoint serves a local archive; download "
            "it (aws s3 cp) and pass the file, or train locally"
        )
    if not archive.exists():
        raise ModelLoadError(f"model record {path} names {archive}, which does not exist")
    return archive


def _unique_module_name() -> str:
    global _module_counter
    with _module_counter_lock:
        _module_counter += 1
        return f"_local_endpoint_entry_point_{_module_counter}"


def _takes_context(func: Callable[..., Any], n_args: int) -> bool:
    n_params = len(inspect.signature(func).parameters)
    if n_params == n_args:
        return False
    if n_params == n_args + 1:
        return True
    raise ModelLoadError(f"{func.__name__} takes {n_params} arguments, expected {n_args}")


class InferenceModel:
    """A loaded model archive; ``invoke`` runs one request through the hooks."""

    def __init__(self, archive: Path, entry_point: str = "inference.py") -> None:
        self.archive = resolve_model_archive(archive)
        self._tmp = tempfile.TemporaryDirectory(prefix="local-endpoint-model-")
        self.model_dir = Path(self._tmp.name)
        try:
            self._extract()
            self.module = self._import_entry_point(entry_point)
            self._bind_hooks()
            self.model = self._call(self._model_fn, self.model_dir)
        except BaseException:
            self.close()
            raise

    def _extract(self) -> None:
        try:
            with tarfile.open(self.archive, "r:*") as tar:
                tar.extractall(self.model_dir, filter="data")
        except (tarfile.TarError, OSError) as error:
            raise ModelLoadError(f"cannot extract {self.archive}: {error}") from error

    def _import_entry_point(self, entry_point: str) -> ModuleType:
        code_dir = self.model_dir / "code"
        source = code_dir / entry_point
        if not source.is_file():
            raise ModelLoadError(
                f"{self.archive} has no code/{entry_point}: the PyTorch container needs "
                "the entry point inside the archive (source_dir packed as code/)"
            )
        self._code_dir = str(code_dir)
        self._modules_before = set(sys.modules)
        sys.path.insert(0, self._code_dir)
        name = _unique_module_name()
        spec = importlib.util.spec_from_file_location(name, source)
        if spec is None or spec.loader is None:
            raise ModelLoadError(f"cannot import {source}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    def _bind_hooks(self) -> None:
        module = self.module
        transform_fn = getattr(module, "transform_fn", None)
        hooks = {
            name: getattr(module, name, None) for name in ("input_fn", "predict_fn", "output_fn")
        }
        if transform_fn and any(hooks.values()):
            raise ModelLoadError(
                "inference.py defines transform_fn together with input_fn/predict_fn/"
                "output_fn: the toolkit refuses that combination"
            )
        model_fn = getattr(module, "model_fn", None)
        if model_fn is None:
            raise ModelLoadError(
                "inference.py has no model_fn: this local endpoint loads models only "
                "through model_fn(model_dir)"
            )
        self._model_fn = model_fn
        self._transform_fn = transform_fn
        self._input_fn = hooks["input_fn"] or _default_input_fn
        self._predict_fn = hooks["predict_fn"] or _default_predict_fn
        self._output_fn = hooks["output_fn"] or _default_output_fn

    def _call(self, func: Callable[..., Any], *args: Any) -> Any:
        if _takes_context(func, len(args)):
            return func(*args, None)
        return func(*args)

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> InferenceResult:
        """Run one request; raise ``InferenceFailure`` with the container's status on error."""
        if not accept or accept == ANY_ACCEPT:
            accept = DEFAULT_ACCEPT
        data: bytes | str = body
        if content_type.split(";", 1)[0].strip().lower() in UTF8_CONTENT_TYPES:
            data = body.decode("utf-8")
        try:
            if self._transform_fn is not None:
                result = self._call(self._transform_fn, self.model, data, content_type, accept)
            else:
                decoded = self._call(self._input_fn, data, content_type)
                prediction = self._call(self._predict_fn, decoded, self.model)
                result = self._call(self._output_fn, prediction, accept)
        except Exception as error:
            status = getattr(error, "status_code", 500)
            if not isinstance(status, int) or not 400 <= status <= 599:
                status = 500
            raise InferenceFailure(status, _error_message(error), traceback.format_exc()) from error
        response_type = accept
        if isinstance(result, tuple):
            result, response_type = result
        if isinstance(result, str):
            result = result.encode("utf-8")
        return InferenceResult(bytes(result), response_type)

    def close(self) -> None:
        """Forget the imported code (sys.path, sys.modules) and delete the extraction."""
        code_dir = getattr(self, "_code_dir", None)
        if code_dir is not None:
            if code_dir in sys.path:
                sys.path.remove(code_dir)
            for name in set(sys.modules) - self._modules_before:
                module_file = getattr(sys.modules[name], "__file__", None) or ""
                if module_file.startswith(code_dir) or name == self.module.__name__:
                    del sys.modules[name]
            self._code_dir = None
        self._tmp.cleanup()


class UnsupportedContentType(ValueError):
    status_code = 415


def _default_input_fn(data: bytes | str, content_type: str) -> Any:
    import numpy as np
    import torch

    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        return torch.as_tensor(json.loads(data))
    if media_type == "application/x-npy":
        return torch.as_tensor(np.load(io.BytesIO(data), allow_pickle=False))
    raise UnsupportedContentType(
        f"Content type {content_type} is not supported by this framework: implement input_fn"
    )


def _default_predict_fn(data: Any, model: Any) -> Any:
    import torch

    with torch.no_grad():
        return model(data)


def _default_output_fn(prediction: Any, accept: str) -> tuple[str, str]:
    if accept.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedContentType(
            f"Accept {accept} is not supported by this framework: implement output_fn"
        )
    if hasattr(prediction, "tolist"):
        prediction = prediction.tolist()
    return json.dumps(prediction), accept
