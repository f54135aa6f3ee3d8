"""cdk-nag, cfn-lint and the snapshots: checks over every synthesized template."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Annotations, Match

from tests.stacks.support import ALL_STACK_NAMES, normalized


@pytest.mark.parametrize("name", ALL_STACK_NAMES)
def test_no_unsuppressed_aws_solutions_findings(synthesized, name):
    annotations = Annotations.from_stack(synthesized.stack(name))
    findings = annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*"))
    assert findings == []
    assert annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*")) == []


@pytest.mark.parametrize("name", ALL_STACK_NAMES)
def test_every_suppression_gives_its_reason(synthesized, name):
    template = synthesized.template(name)
    # Resource suppressions sit on their resources, stack suppressions on the template.
    suppressions = [
        rule
        for holder in (template, *template["Resources"].values())
        for rule in holder.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert suppressions, f"{name} has no suppressions to check"
    for rule in suppressions:
        assert len(rule["reason"]) >= 40, rule


def test_cfn_lint_finds_no_errors(synthesized):
    templates = [str(synthesized.outdir / f"{name}.template.json") for name in ALL_STACK_NAMES]
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", *templates],
        capture_output=True,
        text=True,
        check=False,
    )
    # Exit code bits: 1 = cfn-lint itself failed, 2 = errors, 4 = warnings, 8 = informational.
    assert result.returncode & 0b11 == 0, result.stdout + result.stderr
    assert [line for line in result.stdout.splitlines() if ":E" in line] == []


@pytest.mark.parametrize("name", ALL_STACK_NAMES)
def test_templates_are_environment_agnostic(synthesized, name):
    template = synthesized.template(name)
    template.pop("Mappings", None)  # the per-region registry accounts of the inference image
    text = json.dumps(template)
    assert re.findall(r"\b\d{12}\b", text) == []
    assert re.findall(r"\b(?:us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d\b", text) == []
    assert "arn:aws:" not in text


@pytest.mark.parametrize("name", ALL_STACK_NAMES)
def test_template_snapshot(synthesized, snapshot, name):
    assert normalized(synthesized.template(name)) == snapshot


def test_snapshot_normalization_hides_asset_hashes_only():
    template = {"S3Key": "0" * 64 + ".zip", "Name": "SconesStorage"}
    assert json.dumps(normalized(template)) == (
        '{"Name": "SconesStorage", "S3Key": "<asset-hash>.zip"}'
    )
