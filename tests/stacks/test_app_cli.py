"""`python app.py` and the pinned `cdk synth`, run as a user runs them."""

import json
import os
import subprocess
import sys

from stacks.application import REPO_ROOT
from tests.stacks.support import write_record

CDK_CLI = REPO_ROOT / "node_modules" / ".bin" / "cdk"


def run_app(tmp_path, context: dict, *command: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CDK_OUTDIR": str(tmp_path / "out"),
        "CDK_CONTEXT_JSON": json.dumps(context),
    }
    return subprocess.run(
        list(command) or [sys.executable, "app.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_bad_context_fails_with_one_line(tmp_path):
    result = run_app(tmp_path, {"confidence_threshold": 1.5})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: context confidence_threshold=1.5 is out of range; allowed: (0, 1]"
    ]


def test_without_a_model_record_only_storage_is_synthesized(tmp_path):
    result = run_app(tmp_path, {"model_record": str(tmp_path / "absent.json")})
    assert result.returncode == 0, result.stderr
    assert "no model record at" in result.stderr
    assert "python training/train.py --local" in result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    stacks = {
        name
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert stacks == {"SconesStorage"}


def test_pinned_cdk_cli_synthesizes_offline_without_credentials(tmp_path):
    record = write_record(tmp_path)
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env["PATH"] = f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        [
            str(CDK_CLI),
            "synth",
            "--quiet",
            "--no-notices",
            "--no-version-reporting",
            "-c",
            f"model_record={record}",
            "--output",
            str(tmp_path / "out"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    templates = sorted(p.name for p in (tmp_path / "out").glob("*.template.json"))
    assert templates == [
        "SconesBatch.template.json",
        "SconesEndpoint.template.json",
        "SconesMonitoring.template.json",
        "SconesStorage.template.json",
        "SconesWorkflow.template.json",
    ]
