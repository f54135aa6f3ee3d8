"""The baseline file the drift monitor compares each window with: read and validated.

JSON at ``s3://BUCKET_NAME/BASELINE_KEY``. Training writes it beside the model record
(``training/drift_baseline.py``, from the record's test-split evaluation) and synth uploads it;
``capture_baseline.py`` makes one from a reviewed capture window::

    {"schema": "scones-drift-baseline/1",
     "model": {"training_job_name": "...", "model_data_url": "...", "created_at": "..."},
     "confidence_threshold": 0.85,          # evaluation.recommended_threshold
     "top_confidences": [0.97, ...],        # one per test image, 0.5-1
     "brightness": [121.3, ...],            # one per test image, 0-255
     "width": [32, ...], "height": [32, ...],
     "predicted_class_mix": {"bicycle": 0.5, "motorcycle": 0.5},
     "low_confidence_rate": 0.12}           # at confidence_threshold

``model`` says where the baseline came from and is not read. No object at the key is
``BaselineNotFound``; a file that is not JSON, not of this schema, or lacks one of
``top_confidences``, ``brightness`` (non-empty lists of numbers), ``confidence_threshold`` (in
(0, 1]) or ``predicted_class_mix`` (an object) is ``InvalidBaseline``.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError
from drift_errors import BaselineNotFound, InvalidBaseline

BASELINE_SCHEMA = "scones-drift-baseline/1"
SAMPLES = {"top_confidence": "top_confidences", "brightness": "brightness"}


def validate_baseline(baseline: Any) -> dict[str, Any]:
    """The baseline as this function reads it; InvalidBaseline when it cannot be used."""
    if not isinstance(baseline, dict) or baseline.get("schema") != BASELINE_SCHEMA:
        raise InvalidBaseline(f"the baseline is not a {BASELINE_SCHEMA!r} JSON object")
    for name in SAMPLES.values():
        values = baseline.get(name)
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        ):
            raise InvalidBaseline(f"the baseline needs a non-empty list of numbers {name!r}")
    threshold = baseline.get("confidence_threshold")
    if not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise InvalidBaseline(f"baseline confidence_threshold {threshold!r} is not in (0, 1]")
    if not isinstance(baseline.get("predicted_class_mix"), dict):
        raise InvalidBaseline("the baseline needs a predicted_class_mix object")
    return baseline


def load_baseline(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """The validated baseline at ``s3://bucket/key``."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
            raise BaselineNotFound(f"no baseline at s3://{bucket}/{key}") from error
        raise
    try:
        baseline = json.loads(body)
    except ValueError as error:
        raise InvalidBaseline(f"s3://{bucket}/{key} is not JSON: {error}") from error
    return validate_baseline(baseline)


def baseline_samples(baseline: dict[str, Any]) -> dict[str, list[float]]:
    """The baseline's sample of each tested feature, by feature name."""
    return {feature: [float(v) for v in baseline[name]] for feature, name in SAMPLES.items()}
