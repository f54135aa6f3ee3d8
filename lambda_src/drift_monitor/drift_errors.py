"""The drift monitor's errors: the class name is the error type a failed invocation reports.

ConfigurationError      an environment variable (or the event's window) is missing or out
                        of range
BaselineNotFound        no object at BASELINE_KEY
InvalidBaseline         the baseline lacks a field or has one of the wrong kind
CaptureReadError        S3 refused to list or read the capture
MalformedCaptureRecord  one capture line is not a readable record: counted and skipped in
                        the report, never raised out of the function
"""


class ConfigurationError(Exception):
    """An environment variable is missing or has a value this function cannot use."""


class BaselineNotFound(Exception):
    """The baseline object does not exist."""


class InvalidBaseline(ValueError):
    """The baseline is incomplete or malformed."""


class CaptureReadError(Exception):
    """S3 refused to list or read the capture files."""


class MalformedCaptureRecord(ValueError):
    """One line of a capture file is not a readable SageMaker capture record."""
