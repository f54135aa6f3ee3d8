"""classify_image's errors: each class name is the errorType Step Functions sees."""


class InvalidInput(Exception):
    """The event lacks the bucket, the key, or a base64 JPEG or PNG in image_data as its
    content_type says."""


class EndpointBusy(Exception):
    """The endpoint has no capacity for the request now: worth waiting for a scale-out."""


class EndpointUnavailable(Exception):
    """Another transient endpoint failure (a 5xx, no connection): worth a few quick retries."""


class EndpointError(Exception):
    """A permanent endpoint failure: retrying the same request will not help."""


class ConfigurationError(Exception):
    """An environment variable is missing or has a value this function cannot use."""
