"""serialize_image's errors: each class name is the errorType Step Functions sees."""


class InvalidInput(Exception):
    """The event does not name an S3 bucket and key."""


class ImageNotFound(Exception):
    """The object (or its bucket) does not exist."""


class InvalidImage(Exception):
    """The object is empty, not an image, truncated or cannot be decoded."""


class ImageTooLarge(Exception):
    """The object has too many bytes or declares too many pixels."""


class AccessDenied(Exception):
    """S3 refused the function's role: the deployment lacks a grant."""


class ConfigurationError(Exception):
    """An environment variable has a value this function cannot use."""
