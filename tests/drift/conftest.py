"""Fixtures of the drift monitor tests: made-up capture records, baselines and EMF output."""

from __future__ import annotations

import base64
import io
import json
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

# xray_daemon is autouse: every test here runs traced, against the loopback listener.
from tests.xray_support import import_in_lambda, xray_daemon, xray_listener  # noqa: F401

REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

CAPTURE_SAMPLES = Path(REPO_ROOT).parent / "shared" / "data" / "capture-samples"
# The model's classes (the record's class_names, the monitor's CLASS_NAMES), in output order.
CLASS_NAMES = ("bicycle", "motorcycle")

# The handler as the Lambda runtime imports it; its modules by their own names (tests/conftest.py
# puts the function's folder on the import path, as its asset root is in Lambda).
handler = import_in_lambda("lambda_src.drift_monitor.handler")


@pytest.fixture(autouse=True)
def fresh_metrics() -> None:
    """No metric, dimension or metadata left over from another test's invocation."""
    handler.metrics.clear_metrics()


def png_bytes(level: int, seed: int, size: int = 32) -> bytes:
    """A noisy size x size RGB PNG whose pixel values centre on ``level`` (0-255)."""
    noise = np.random.default_rng(seed).integers(-20, 21, size=(size, size, 3))
    pixels = np.clip(level + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def capture_line(
    probabilities: tuple[float, float],
    image: bytes | None,
    when: datetime,
    output_encoding: str = "JSON",
) -> str:
    """One SageMaker capture record, as an endpoint writes it."""
    text = json.dumps(list(probabilities))
    output = {"observedContentType": "application/json", "mode": "OUTPUT"}
    if output_encoding == "BASE64":
        output.update(data=base64.b64encode(text.encode()).decode(), encoding="BASE64")
    else:
        output.update(data=text, encoding="JSON")
    capture: dict[str, Any] = {"endpointOutput": output}
    if image is not None:
        capture["endpointInput"] = {
            "observedContentType": "image/png",
            "mode": "INPUT",
            "data": base64.b64encode(image).decode(),
            "encoding": "BASE64",
        }
    return json.dumps(
        {
            "captureData": capture,
            "eventMetadata": {
                "eventId": f"event-{when.timestamp()}",
                "inferenceTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "eventVersion": "0",
        }
    )


def confidences(count: int, low: float, high: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.uniform(low, high), 6) for _ in range(count)]


def model_record(
    top_confidences: list[float], brightness: list[float], threshold: float = 0.8
) -> dict[str, Any]:
    """A model record with the evaluation block ``training/evaluate.py`` writes (its drift
    baseline: ``training.drift_baseline.build_baseline``)."""
    return {
        "model_data_url": "/tmp/model.tar.gz",
        "class_names": list(CLASS_NAMES),
        "training_job_name": "local-test",
        "created_at": "2025-01-31T12:00:00+00:00",
        "evaluation": {
            "recommended_threshold": threshold,
            "baseline": {
                "top_confidences": top_confidences,
                "low_confidence_rate": sum(c < threshold for c in top_confidences)
                / len(top_confidences),
                "predicted_class_mix": {"bicycle": 0.5, "motorcycle": 0.5},
                "brightness": brightness,
                "width": [32] * len(brightness),
                "height": [32] * len(brightness),
            },
        },
    }


def _single(value: Any) -> Any:
    return value[0] if isinstance(value, list) and len(value) == 1 else value


@pytest.fixture
def emitted_metrics(capsys) -> Callable[[], list[dict[str, Any]]]:
    """The EMF blobs printed so far: namespace, dimensions and the metrics with units."""

    def read() -> list[dict[str, Any]]:
        blobs = []
        for line in capsys.readouterr().out.splitlines():
            if not line.startswith("{") or '"_aws"' not in line:
                continue
            blob = json.loads(line)
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    blobs.append(
                        {
                            "namespace": directive["Namespace"],
                            "dimensions": directive["Dimensions"],
                            "name": metric["Name"],
                            "unit": metric["Unit"],
                            "value": _single(blob[metric["Name"]]),
                        }
                    )
        return blobs

    return read
