"""Helpers for the stack tests: synthesize the app, find resources, parse the definition."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks.application import build_app
from training.drift_baseline import write_baseline

S3_RECORD = {
    "model_data_url": "s3://example-training-bucket/models/job-1/output/model.tar.gz",
    "image_uri": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312",
    "framework_version": "2.6.0",
    "py_version": "py312",
    "class_names": ["bicycle", "motorcycle"],
    "metrics": {"test_accuracy": 0.93},
    "training_job_name": "job-1",
    "created_at": "2025-01-31T12:00:00+00:00",
    "evaluation": {
        "recommended_threshold": 0.85,
        "baseline": {
            "top_confidences": [0.99, 0.97, 0.91, 0.88, 0.76, 0.64],
            "brightness": [121.5, 98.25, 140.0, 110.75, 87.5, 131.0],
            "width": [32] * 6,
            "height": [32] * 6,
            "predicted_class_mix": {"bicycle": 0.5, "motorcycle": 0.5},
            "low_confidence_rate": 0.33,
        },
    },
}
STACK_NAMES = ("SconesStorage", "SconesEndpoint", "SconesWorkflow", "SconesMonitoring")
# Batch mode is off by default; the shared synthesis turns it on to test it.
BATCH_STACK = "SconesBatch"
ALL_STACK_NAMES = (*STACK_NAMES, BATCH_STACK)


def write_record(directory: Path, **changes: Any) -> Path:
    """The record, and beside it the drift baseline training writes with it."""
    path = directory / "model-record.json"
    path.write_text(json.dumps({**S3_RECORD, **changes}))
    write_baseline(path)
    return path


@dataclass
class SynthesizedApp:
    app: Any
    outdir: Path

    def stack(self, name: str):
        return self.app.node.find_child(name)

    def template(self, name: str) -> dict[str, Any]:
        return json.loads((self.outdir / f"{name}.template.json").read_text())


def synthesize(tmp_path: Path, **context: Any) -> SynthesizedApp:
    outdir = tmp_path / "cdk.out"
    app = build_app(context=context, outdir=str(outdir))
    app.synth()
    return SynthesizedApp(app=app, outdir=outdir)


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def only(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    found = list(resources(template, resource_type).values())
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return found[0]


ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def normalized(template: dict[str, Any]) -> dict[str, Any]:
    """The template with asset hashes replaced, so a handler edit does not churn snapshots."""
    return json.loads(ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True)))


def state_machine_definition(template: dict[str, Any]) -> dict[str, Any]:
    """The state machine's ASL, each token rendered as `<LogicalId.Attribute>` or `<Ref>`."""
    definition = only(template, "AWS::StepFunctions::StateMachine")["Properties"]
    separator, parts = definition["DefinitionString"]["Fn::Join"]
    return json.loads(separator.join(map(_render_token, parts)))


def _render_token(part: Any) -> str:
    if isinstance(part, str):
        return part
    if "Fn::GetAtt" in part:
        return "<{}.{}>".format(*part["Fn::GetAtt"])
    if "Fn::GetStackOutput" in part:
        output = part["Fn::GetStackOutput"]
        return "<{}.{}>".format(output["StackName"], output["OutputName"])
    return "<{}>".format(part["Ref"])
