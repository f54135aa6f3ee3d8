"""Shared test set-up: no test may reach a real AWS account."""

import os
import sys
from pathlib import Path

import pytest

# Each function's folder is on the import path, as its asset root is in Lambda, so that a
# handler imports the modules beside it by their own names.
for _function_dir in sorted((Path(__file__).resolve().parents[1] / "lambda_src").iterdir()):
    if (_function_dir / "handler.py").is_file() and str(_function_dir) not in sys.path:
        sys.path.append(str(_function_dir))

_FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_METRICS_NAMESPACE": "SconesUnlimited",
    "POWERTOOLS_SERVICE_NAME": "scones-tests",
}

# Powertools reads the metrics namespace and service when a handler module is imported, as in
# Lambda: they are set before any test module imports one.
for _name in ("POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_SERVICE_NAME"):
    os.environ.setdefault(_name, _FAKE_AWS_ENV[_name])


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch):
    for name, value in _FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
