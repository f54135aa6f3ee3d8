"""Pass confident inferences on, fail the rest with a typed error.

Input (classify_image's output)::

    {"s3_bucket": "my-bucket", "s3_key": "incoming/photo.jpg", "inferences": [0.02, 0.98]}

Output (the input plus the winning class of CLASS_NAMES and its probability)::

    {"s3_bucket": "my-bucket", "s3_key": "incoming/photo.jpg", "inferences": [0.02, 0.98],
     "label": "motorcycle", "confidence": 0.98}

The inferences are in the order of CLASS_NAMES (the model's: bicycle, motorcycle); a tie goes
to the first. An inference passes when its confidence, max(inferences), is >= THRESHOLD.

Errors (``filter_errors``; the class name is the errorType Step Functions sees):
    LowConfidence       max(inferences) < THRESHOLD; the message names both and the key
    InvalidInput        bucket, key or inferences missing, or inferences not finite numbers in
                        [0, 1], one per class of CLASS_NAMES
    ConfigurationError  THRESHOLD unset or not a number in (0, 1], CLASS_NAMES unset or not
                        two or more distinct names

Environment (``filter_settings``, read once per execution environment):
    THRESHOLD           the lowest confidence that passes, a float in (0, 1] (required)
    CLASS_NAMES         the model's classes, comma-separated, in the order of the inferences
                        (required)

Metrics: every call emits both ``ConfidentInferences`` and ``LowConfidenceInferences`` with
the value 1 or 0, so the average of ``LowConfidenceInferences`` is the low-confidence rate.
"""

from __future__ import annotations

import math
from typing import Any, TypedDict

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from filter_errors import InvalidInput, LowConfidence
from filter_settings import get_settings

logger = Logger()
tracer = Tracer(patch_modules=())  # no AWS call to trace: patch nothing
metrics = Metrics()


class FilterRequest(TypedDict):
    s3_bucket: str
    s3_key: str
    inferences: list[float]


class FilterResult(FilterRequest):
    label: str
    confidence: float


def parse_event(event: Any, class_names: tuple[str, ...]) -> FilterRequest:
    if not isinstance(event, dict):
        raise InvalidInput(f"expected a JSON object, got {type(event).__name__}")
    for name in ("s3_bucket", "s3_key"):
        if not isinstance(event.get(name), str) or not event[name]:
            raise InvalidInput(f"event needs a non-empty string {name!r}")
    inferences = event.get("inferences")
    well_formed = (
        isinstance(inferences, list)
        and len(inferences) == len(class_names)
        and all(
            isinstance(p, int | float)
            and not isinstance(p, bool)
            and math.isfinite(p)
            and 0.0 <= p <= 1.0
            for p in inferences
        )
    )
    if not well_formed:
        raise InvalidInput(
            f"inferences of s3://{event['s3_bucket']}/{event['s3_key']} must be "
            f"{len(class_names)} finite numbers in [0, 1] ordered {class_names}, "
            f"got {inferences!r}"
        )
    return event  # type: ignore[return-value]


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: FilterRequest, context: LambdaContext) -> FilterResult:
    settings = get_settings()
    threshold = settings.threshold
    request = parse_event(event, settings.class_names)
    inferences = [float(p) for p in request["inferences"]]
    confidence = max(inferences)
    label = settings.class_names[inferences.index(confidence)]
    confident = confidence >= threshold
    metrics.add_metric(name="ConfidentInferences", unit=MetricUnit.Count, value=int(confident))
    metrics.add_metric(
        name="LowConfidenceInferences", unit=MetricUnit.Count, value=int(not confident)
    )
    if not confident:
        raise LowConfidence(
            f"confidence {confidence} ({label}) is below THRESHOLD {threshold} "
            f"for s3://{request['s3_bucket']}/{request['s3_key']}"
        )
    logger.info("Inference passed", extra={"label": label, "confidence": confidence})
    return FilterResult(**request, label=label, confidence=confidence)
