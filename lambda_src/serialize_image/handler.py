"""Read an image from S3 and pass it on small, normalized and base64-encoded.

Input, either a direct request::

    {"s3_bucket": "my-bucket", "s3_key": "incoming/photo.jpg"}

or the EventBridge S3 "Object Created" event, as the rule delivers it::

    {"source": "aws.s3", "detail-type": "Object Created",
     "detail": {"bucket": {"name": "my-bucket"}, "object": {"key": "incoming/photo.jpg", ...}}}

The EventBridge event carries the key as stored ("red flower+1.jpg" stays so): S3 URL-encodes
keys only in its SQS, SNS and Lambda notifications, and decoding would read "a b.jpg" for the
object "a+b.jpg". When the event names a ``version-id`` (a versioned bucket), exactly that
version is read, so an overwrite after the event cannot change what is classified; a delete
after the event (of the object or of that version) is ImageNotFound. A direct request's
``s3_key`` is used as given, and its current version read.

Output::

    {"s3_bucket": "my-bucket", "s3_key": "incoming/photo.jpg",
     "image_data": "<base64 JPEG, RGB, longest side <= OUTPUT_MAX_SIDE>",
     "content_type": "image/jpeg",
     "source": {"format": "JPEG", "width": 4032, "height": 3024, "mode": "RGB",
                "bytes": 2811234}}

``content_type`` is ``image/png`` instead when the reduced image is a thumbnail of at most 64 px
(``image_decoding`` says why). ``source`` describes the object as stored (before EXIF rotation
and resizing).

The object is only read (HeadObject, GetObject), never written, deleted or altered.

Errors (``serialize_errors``; the class name is the errorType Step Functions sees):
    InvalidInput        the event names no bucket or key
    ImageNotFound       no such object, version or bucket (also: deleted after the event)
    InvalidImage        empty, not an image, truncated or undecodable
    ImageTooLarge       more than MAX_OBJECT_BYTES bytes or MAX_IMAGE_PIXELS pixels
    AccessDenied        S3 refused this function's role (a missing grant or key policy)
    ConfigurationError  an environment variable below is out of range

Environment (``serialize_settings``, read once per execution environment):
    MAX_OBJECT_BYTES    largest object read, in bytes (default 20 MiB)
    MAX_IMAGE_PIXELS    largest declared width * height (default 40_000_000)
    OUTPUT_MAX_SIDE     longest side of the image passed on, 1..384 (default 384); at the cap a
                        JPEG of noise still fits the 256 KiB Step Functions payload

Metrics: ``ImagesSerialized`` (count), ``SourceImageBytes`` (bytes of the object read) and
``ImagesRejected`` (count of InvalidInput, ImageNotFound, InvalidImage and ImageTooLarge).
"""

from __future__ import annotations

import base64
from typing import Any, TypedDict

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_decoding import SourceImage, normalize_image
from object_reader import check_object_size, head_existing_object, read_object
from s3_event import EventBridgeS3Event, SerializeRequest, parse_event
from serialize_errors import ImageNotFound, ImageTooLarge, InvalidImage, InvalidInput
from serialize_settings import Settings, get_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class SerializedImage(TypedDict):
    s3_bucket: str
    s3_key: str
    image_data: str
    content_type: str
    source: SourceImage


def serialize_object(event: Any, settings: Settings) -> SerializedImage:
    ref = parse_event(event)
    size = head_existing_object(ref)
    label = str(ref)
    check_object_size(ref, size, settings)
    data = read_object(ref, settings)
    image, content_type, source = normalize_image(
        data, label, settings.output_max_side, settings.max_image_pixels
    )
    passed_on = {"content_type": content_type, "bytes": len(image)}
    logger.info("Image serialized", extra={"object": label, "source": source, **passed_on})
    metrics.add_metric(name="ImagesSerialized", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="SourceImageBytes", unit=MetricUnit.Bytes, value=len(data))
    return SerializedImage(
        s3_bucket=ref.bucket,
        s3_key=ref.key,
        image_data=base64.b64encode(image).decode("ascii"),
        content_type=content_type,
        source=source,
    )


@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)  # the output holds the base64 image
@logger.inject_lambda_context
def lambda_handler(
    event: SerializeRequest | EventBridgeS3Event, context: LambdaContext
) -> SerializedImage:
    settings = get_settings()
    try:
        return serialize_object(event, settings)
    except (InvalidInput, ImageNotFound, InvalidImage, ImageTooLarge) as error:
        metrics.add_metric(name="ImagesRejected", unit=MetricUnit.Count, value=1)
        logger.warning("Image rejected", extra={"error": type(error).__name__, "cause": str(error)})
        raise
