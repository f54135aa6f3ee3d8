"""Fixtures of the local-mode tests."""

from pathlib import Path

import pytest

from tests.emulator.emulator_fixtures import build_stub_archive


@pytest.fixture(scope="session")
def stub_archive(tmp_path_factory) -> Path:
    return build_stub_archive(tmp_path_factory.mktemp("stub-model") / "model.tar.gz")
