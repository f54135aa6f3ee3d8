"""A reduced load run (bench/load.py, 60 uploads): every upload ends in exactly one outcome."""

import pytest

from bench.load import BAD_INPUT_EVERY, run_load
from tests.robustness import inputs
from tests.robustness.support import running_workflow

pytestmark = pytest.mark.e2e

UPLOADS = 60


def test_every_upload_ends_in_exactly_one_recorded_outcome(local_app):
    bodies = [inputs.small_png(seed=seed) for seed in range(8)]
    # THRESHOLD 0.55 with the untrained model: classified and LowConfidence both occur.
    with running_workflow(local_app, THRESHOLD="0.55") as workflow:
        report = run_load(workflow, bodies, UPLOADS, concurrency=6, max_seconds=600)

    assert report.not_uploaded == 0
    assert report.lost == [] and report.duplicated == []
    assert sum(report.outcomes.values()) == UPLOADS == len(report.latencies_ms)
    assert report.outcomes["InvalidImage"] == UPLOADS // BAD_INPUT_EVERY
    assert set(report.outcomes) <= {"classified", "LowConfidence", "InvalidImage"}
    assert "lost: 0, duplicated: 0" in report.summary()
