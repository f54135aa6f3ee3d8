"""Classify a serialized image with the SageMaker endpoint.

Input (serialize_image's output; ``source`` is accepted and ignored)::

    {"s3_bucket": "my-bucket", "s3_key": "incoming/photo.jpg",
     "image_data": "<base64 JPEG>", "content_type": "image/jpeg", "source": {...}}

The decoded image goes to InvokeEndpoint (ContentType the event's ``content_type``, image/jpeg
or image/png; Accept application/json); the endpoint answers a JSON list of class probabilities
in the order of CLASS_NAMES (the model's: [p_bicycle, p_motorcycle]).

Output (the image is dropped, Step Functions payloads stay small)::

    {"s3_bucket": "my-bucket", "s3_key": "incoming/photo.jpg",
     "inferences": [0.02, 0.98]}

The client makes exactly one attempt: Step Functions owns the retries, so a transient failure
surfaces at once as ``EndpointBusy`` or ``EndpointUnavailable`` (``endpoint_failures`` says
which failure is which, and why).

Errors (``classify_errors``; the class name is the errorType Step Functions sees):
    InvalidInput         missing keys, a content_type other than image/jpeg or image/png,
                         image_data not base64 or not an image of that type
    EndpointBusy         capacity, waited out: ThrottlingException, HTTP 429 (also
                         ModelNotReadyException), HTTP 503 or ServiceUnavailable, ModelError
                         with an original status 429 or 503, connect/read timeouts
    EndpointUnavailable  other transient failures, retried briefly: InternalFailure,
                         InternalDependencyException, other HTTP 5xx, ModelError with another
                         original status >= 500, connection errors
    EndpointError        permanent: ValidationError (e.g. no such endpoint), ModelError with
                         another original status, other 4xx, a body that is not a JSON list of
                         finite probabilities in [0, 1], one per class of CLASS_NAMES, summing
                         to 1 (within 1e-3)
    ConfigurationError   ENDPOINT_NAME or CLASS_NAMES unset, CLASS_NAMES not two or more
                         distinct names, or a timeout variable not a positive number

Environment (``classify_settings``, read once per execution environment):
    ENDPOINT_NAME                    the SageMaker endpoint to invoke (required)
    ENDPOINT_READ_TIMEOUT_SECONDS    read timeout (default 10)
    ENDPOINT_CONNECT_TIMEOUT_SECONDS connect timeout (default 3)
    CLASS_NAMES                      the model's classes, comma-separated, in the order of
                                     the endpoint's answer (required)

Metrics: ``Inferences`` (count), ``EndpointLatency`` (milliseconds, also on failures) and
``EndpointFailures`` (count of EndpointBusy, EndpointUnavailable and EndpointError).
"""

from __future__ import annotations

import time
from typing import TypedDict

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from classify_errors import EndpointBusy, EndpointError, EndpointUnavailable
from classify_settings import get_settings
from image_request import ClassifyRequest, parse_event
from probabilities import parse_probabilities
from sagemaker_endpoint import invoke_endpoint

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class ClassifyResult(TypedDict):
    s3_bucket: str
    s3_key: str
    inferences: list[float]


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: ClassifyRequest, context: LambdaContext) -> ClassifyResult:
    settings = get_settings()
    bucket, key, image, content_type = parse_event(event)
    started = time.perf_counter()
    try:
        body = invoke_endpoint(settings, image, content_type)
        inferences = parse_probabilities(settings.endpoint_name, body, settings.class_names)
    except (EndpointBusy, EndpointUnavailable, EndpointError) as error:
        metrics.add_metric(name="EndpointFailures", unit=MetricUnit.Count, value=1)
        logger.warning(
            "Endpoint failed", extra={"error": type(error).__name__, "cause": str(error)}
        )
        raise
    finally:
        latency_ms = (time.perf_counter() - started) * 1000
        metrics.add_metric(name="EndpointLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
    metrics.add_metric(name="Inferences", unit=MetricUnit.Count, value=1)
    logger.info(
        "Image classified",
        extra={"object": f"s3://{bucket}/{key}", "inferences": inferences, "ms": latency_ms},
    )
    return ClassifyResult(s3_bucket=bucket, s3_key=key, inferences=inferences)
