"""classify_image's errors: each class name is the errorType Step Functions sees."""


class InvalidInput(Exception):
    """The event lacks the bucket, the key or a base64 PNG in image_data."""


class EndpointUnavailable(Exception):
    """A transient endpoint failure: worth retrying later."""


class EndpointError(Exception):
    """A permanent endpoint failure: retrying the same request will not help."""


class ConfigurationError(Exception):
    """An environment variable is missing or has a value this function cannot use."""
