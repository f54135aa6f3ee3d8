"""The drift monitor's source folder and the baseline file it compares the capture with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stacks.workflow_stack import LAMBDA_SRC
from training.drift_baseline import build_baseline

DRIFT_MONITOR_SOURCE = LAMBDA_SRC / "drift_monitor"


def drift_baseline(model_record: Path) -> dict[str, Any]:
    """The drift monitor's baseline file, built by training's ``build_baseline`` from the record.

    Raises ``DriftBaselineError`` (a ValueError) when the record has no evaluation baseline.
    """
    return build_baseline(json.loads(model_record.read_text()))
