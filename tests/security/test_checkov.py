"""checkov, an external scanner, over every synthesized template of both apps: no failed
check, and every skip carries its reason in the template's metadata (stacks/checkov.py)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
# No download from the vendor's platform (--skip-download, BC_SKIP_MAPPING) and no PyPI
# version check: the scan runs offline.
OFFLINE = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
NO_COMMENT = "No comment provided"  # what checkov reports for a skip without a comment


@pytest.fixture(scope="module")
def scanned(templates, tmp_path_factory):
    """checkov's JSON report over every template, and the templates by file name."""
    if not CHECKOV.is_file():
        pytest.fail(f"checkov is not installed at {CHECKOV}: run `make setup`")
    folder = tmp_path_factory.mktemp("checkov")
    by_file = {}
    for (app, stack), template in templates.items():
        name = f"{app}-{stack}.template.json"
        (folder / name).write_text(json.dumps(template))
        by_file[name] = template
    command = [str(CHECKOV), "--framework", "cloudformation", "--output", "json"]
    command += ["--skip-download", "--compact", "--file", *sorted(by_file)]
    result = subprocess.run(
        command,
        cwd=folder,
        env={**os.environ, **OFFLINE},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Exit code 0: no failed check; 1: failed checks (reported below); anything else: a crash.
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["check_type"] == "cloudformation"
    return report, by_file


def results(report, kind):
    return [
        (Path(found["file_path"]).name, found["resource"], found["check_id"], found)
        for found in report["results"][kind]
    ]


def test_checkov_scans_every_template_without_a_parsing_error(scanned):
    report, by_file = scanned
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 200
    assert {file for file, *_ in results(report, "passed_checks")} == set(by_file)


def test_checkov_finds_no_failed_check(scanned):
    report, _ = scanned
    failed = [
        (file, resource, check) for file, resource, check, _ in results(report, "failed_checks")
    ]
    assert failed == [], "fix them, or skip each with its reason (stacks/checkov.py)"


def test_every_skip_gives_its_reason(scanned):
    report, _ = scanned
    skipped = results(report, "skipped_checks")
    assert skipped
    for file, resource, check, found in skipped:
        comment = found["check_result"].get("suppress_comment", "")
        assert comment != NO_COMMENT and len(comment) >= 40, (file, resource, check)


def test_every_skip_in_the_metadata_applies_to_its_resource(scanned):
    """A skip with a mistyped id, or on a type the check does not cover, skips nothing."""
    report, by_file = scanned
    declared = {
        (file, f"{resource['Type']}.{logical_id}", skip["id"])
        for file, template in by_file.items()
        for logical_id, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    assert declared
    used = {
        (file, resource, check) for file, resource, check, _ in results(report, "skipped_checks")
    }
    assert declared - used == set()
