"""Typed errors of the local mode: each says what broke and what to do about it."""


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
