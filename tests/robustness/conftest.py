"""One synthesized app (local model archive) per session; one local workflow per module."""

from pathlib import Path

import pytest

from tests.robustness.support import local_record_app


@pytest.fixture(scope="session")
def local_app(tmp_path_factory):
    return local_record_app(Path(tmp_path_factory.getbasetemp()) / "apps")
