"""One synthesized app for all stack tests: synth (with bundling) is the slow part."""

import pytest

from tests.stacks.support import SynthesizedApp, synthesize, write_record


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> SynthesizedApp:
    workdir = tmp_path_factory.mktemp("app")
    return synthesize(workdir, model_record=str(write_record(workdir)))
