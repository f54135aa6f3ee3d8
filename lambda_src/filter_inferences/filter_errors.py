"""filter_inferences' errors: each class name is the errorType Step Functions sees."""


class InvalidInput(Exception):
    """The event lacks the bucket, the key or a well-formed list of inferences."""


class LowConfidence(Exception):
    """The most likely class is below the threshold."""


class ConfigurationError(Exception):
    """An environment variable is missing or has a value this function cannot use."""
