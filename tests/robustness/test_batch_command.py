"""``python -m emulator batch`` as a user runs it: a fresh process, files on disk."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.emulator.emulator_fixtures import OUTCOME_FIELDS
from tests.robustness import inputs
from tests.robustness.support import assembly_copy, resource_of_type

pytestmark = pytest.mark.e2e
REPO_ROOT = Path(__file__).resolve().parents[2]


def with_threshold(local_app, tmp_path, threshold):
    """A copy of the assembly whose filter function has ``THRESHOLD`` set to ``threshold``
    (the untrained model's confidence is about 0.56, the record's threshold 0.85)."""
    outdir = assembly_copy(local_app.outdir, tmp_path / "cdk.out")
    path = outdir / "SconesWorkflow.template.json"
    template = json.loads(path.read_text())
    _, function = resource_of_type(template, "AWS::Lambda::Function", "FilterInferencesFunction")
    function["Properties"]["Environment"]["Variables"]["THRESHOLD"] = threshold
    path.write_text(json.dumps(template))
    return outdir


def test_the_batch_command_prints_one_line_per_file_from_the_batch_results(local_app, tmp_path):
    outdir = with_threshold(local_app, tmp_path, "0.5")
    image, text_file = tmp_path / "photo.png", tmp_path / "notes.txt"
    image.write_bytes(inputs.small_png(seed=1))
    text_file.write_text("hello")
    completed = subprocess.run(
        [sys.executable, "-m", "emulator", "batch", "--model"]
        + [str(local_app.outdir.parent / "model-record.json"), "--cdk-out", str(outdir)]
        + [str(image), str(text_file), str(image)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(image), str(text_file), str(image)]
    assert len({line["s3_key"] for line in lines}) == 3
    assert all(line["s3_key"].startswith("batch/") for line in lines)
    assert set(lines[0]) == OUTCOME_FIELDS
    assert [line["status"] for line in lines] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert lines[1]["error"] == "InvalidImage"
    summary = json.loads(completed.stderr.strip().splitlines()[-1])
    assert (summary["execution"], summary["map_run"], summary["items"]) == (
        "SUCCEEDED",
        "SUCCEEDED",
        3,
    )
    assert summary["outcomes"] == {"InvalidImage": 1, "SUCCEEDED": 2}
    assert summary["manifest"].startswith("batch-results/")


def test_the_batch_command_names_a_missing_file(local_app, tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "emulator", "batch", "--model", "x.json", str(tmp_path / "no.png")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == f"error: no such file: {tmp_path / 'no.png'}"
