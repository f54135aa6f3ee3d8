"""Typed errors of the local mode: each says what broke and what to do about it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


class EmulatorError(Exception):
    """Base class of every error the local mode raises on purpose."""


class ModelLoadError(EmulatorError):
    """The model archive or record cannot be served (missing, malformed, remote-only)."""


class TemplateError(EmulatorError):
    """The synthesized cloud assembly does not hold what the local mode needs."""


class MotoPatchError(EmulatorError):
    """The installed moto no longer has the shape the local mode patches."""


class WorkflowError(EmulatorError):
    """An execution could not be started or did not finish in time."""


def require_parameters(
    function: Callable[..., Any], expected: tuple[str, ...], name: str, advice: str
) -> None:
    """Raise ``MotoPatchError`` unless moto's ``function`` (called ``name`` in the message)
    still takes the ``expected`` parameters, the signature its patch was written for."""
    parameters = tuple(inspect.signature(function).parameters)
    if parameters != expected:
        raise MotoPatchError(f"{name}{parameters} changed from {expected}: {advice}")
