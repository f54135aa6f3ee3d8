"""The drift monitor's source folder and the baseline file it compares the capture with."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stacks.workflow_stack import LAMBDA_SRC

DRIFT_MONITOR_SOURCE = LAMBDA_SRC / "drift_monitor"


def drift_baseline(model_record: Path) -> dict[str, Any]:
    """The drift monitor's baseline file, made by its own ``build_baseline`` from the record.

    Raises the handler's ``InvalidBaseline`` when the record has no evaluation baseline.
    """
    spec = importlib.util.spec_from_file_location(
        "scones_drift_monitor_handler", DRIFT_MONITOR_SOURCE / "handler.py"
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {DRIFT_MONITOR_SOURCE / 'handler.py'}")
    handler = sys.modules.get(spec.name)
    if handler is None:
        handler = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = handler  # dataclasses look their module up while defined
        spec.loader.exec_module(handler)
    build: Callable[[dict[str, Any]], dict[str, Any]] = handler.build_baseline
    return build(json.loads(model_record.read_text()))
