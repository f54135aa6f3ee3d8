"""InvokeEndpoint, once: Step Functions owns the retries, so the client makes one attempt.

Traced with the function's Tracer (Powertools shares one configuration between every
``Tracer()`` of a process).
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from aws_lambda_powertools import Tracer
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from classify_settings import EndpointSettings
from endpoint_failures import connection_failure, service_failure

RESPONSE_ACCEPT = "application/json"

tracer = Tracer()


@functools.cache
def runtime_client(read_timeout: float, connect_timeout: float) -> Any:
    """A sagemaker-runtime client that tries once; AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME applies.

    botocore's ``max_attempts`` counts retries (1 would mean two attempts); ``total_max_attempts``
    counts attempts, so 1 disables retries.
    """
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return boto3.client("sagemaker-runtime", config=config)


@tracer.capture_method(capture_response=False)  # the endpoint's body, of any size
def invoke_endpoint(settings: EndpointSettings, image: bytes, content_type: str) -> bytes:
    """Send the image once and return the raw response body."""
    endpoint_name = settings.endpoint_name
    client = runtime_client(settings.read_timeout, settings.connect_timeout)
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint_name,
            ContentType=content_type,
            Accept=RESPONSE_ACCEPT,
            Body=image,
        )
        return response["Body"].read()
    except ClientError as error:
        raise service_failure(endpoint_name, error) from error
    except (BotocoreConnectionError, HTTPClientError) as error:
        raise connection_failure(endpoint_name, error) from error
