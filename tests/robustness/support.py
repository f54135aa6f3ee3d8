"""Shared by the robustness and security tests: one model archive, the synthesized apps.

The robustness suites test what the workflow does with bad input, faults and load, not how
well the model classifies, so the model is the real network and the real ``inference.py``
packed by the training code's own layout, with untrained (seeded) weights: built in about
a second instead of a training run. Each app is synthesized once per test session.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.stacks.support import SynthesizedApp, synthesize, write_record

_cache: dict[str, Any] = {}


def untrained_model_archive(directory: Path, seed: int = 0, probe_votes: bool = False) -> Path:
    """``model.tar.gz`` as training writes it (weights, config, ``code/``), weights untrained.

    The thumbnail probe runs on every thumbnail but, unless ``probe_votes``, its weights are
    zero: it adds nothing, so the answers the robustness tests expect are the network's. With
    ``probe_votes`` they are drawn large enough for its vote to move an answer.
    """
    import torch

    from training.cloud import MODEL_SOURCE_DIR
    from training.evaluate import import_from_folder
    from training.train import pack_model_dir

    defaults = import_from_folder(MODEL_SOURCE_DIR, "hyperparameters").Hyperparameters()
    artifact = import_from_folder(MODEL_SOURCE_DIR, "artifact")
    thumbnail_probe = import_from_folder(MODEL_SOURCE_DIR, "thumbnail_probe")
    torch.manual_seed(seed)
    network = artifact.build_ensemble(defaults)
    probe = thumbnail_probe.ThumbnailProbe()
    if probe_votes:
        torch.nn.init.normal_(probe.linear.weight, std=0.1)
    else:
        torch.nn.init.zeros_(probe.linear.weight)
        torch.nn.init.zeros_(probe.linear.bias)
    config = artifact.model_config(defaults, ([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]))
    model_dir = directory / "model"
    artifact.write_model_dir(model_dir, network.state_dict(), config, probe.state_dict())
    return pack_model_dir(model_dir, directory / "model.tar.gz")


def local_record_app(root: Path) -> SynthesizedApp:
    """The app synthesized for a laptop-trained model (a local archive, shipped as an asset)."""
    if "local" not in _cache:
        directory = root / "local-record"
        directory.mkdir(parents=True, exist_ok=True)
        archive = untrained_model_archive(directory)
        record = write_record(
            directory, model_data_url=str(archive), training_job_name="untrained-local"
        )
        _cache["local"] = synthesize(directory, model_record=str(record))
    return _cache["local"]


def s3_record_app(root: Path) -> SynthesizedApp:
    """The app synthesized for a SageMaker-trained model (an s3:// artifact)."""
    if "s3" not in _cache:
        directory = root / "s3-record"
        directory.mkdir(parents=True, exist_ok=True)
        _cache["s3"] = synthesize(directory, model_record=str(write_record(directory)))
    return _cache["s3"]


def stack_templates(outdir: Path) -> dict[str, dict[str, Any]]:
    """Every stack template of a cloud assembly, by stack name (whatever stacks exist)."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    return {
        name: json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }


def assembly_copy(outdir: Path, destination: Path) -> Path:
    """The assembly's templates and manifests copied, its assets linked (cheap to edit)."""
    destination.mkdir(parents=True)
    for entry in outdir.iterdir():
        if entry.name.startswith("asset."):
            (destination / entry.name).symlink_to(entry)
        elif entry.is_file():
            shutil.copy2(entry, destination / entry.name)
    return destination


def resource_of_type(template, resource_type, name_part):
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type and name_part in logical_id
    ]
    return found


# -- running the local workflow -------------------------------------------------------------
PAYLOAD_LIMIT_BYTES = 256 * 1024  # Step Functions' limit on a state's input or output
TYPED_ERRORS = frozenset(
    {"InvalidInput", "ImageNotFound", "InvalidImage", "ImageTooLarge", "EndpointError"}
    | {"LowConfidence"}
)
_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@contextmanager
def running_workflow(app: SynthesizedApp, **environment: str) -> Iterator[Any]:
    """The local workflow of ``app`` (fake credentials, the bucket versioned as in the
    template, so that any rewrite or delete of an upload leaves a trace)."""
    import boto3
    import pytest

    from emulator.workflow import LocalWorkflow

    with pytest.MonkeyPatch.context() as patch:
        for name, value in _FAKE_ENV.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        with LocalWorkflow(app.outdir, environment=environment, execution_timeout=90) as workflow:
            s3 = boto3.client("s3", region_name=workflow.region)
            s3.put_bucket_versioning(
                Bucket=workflow.bucket, VersioningConfiguration={"Status": "Enabled"}
            )
            workflow.s3 = s3
            yield workflow


def put(workflow: Any, body: bytes, key: str) -> tuple[dict[str, Any], str]:
    """Upload like a driver's phone; return the PutObject answer and the one execution."""
    answer = workflow.s3.put_object(Bucket=workflow.bucket, Key=key, Body=body)
    executions = workflow.executions.get(f"{workflow.bucket}/{key}", [])
    assert len(executions) == 1, f"{key} started {len(executions)} executions"
    return answer, executions[0]


def payload_sizes(history: list[dict[str, Any]]) -> list[int]:
    """The UTF-8 size of every input, output and cause recorded in an execution history."""
    return [
        len(value.encode())
        for event in history
        for name, details in event.items()
        if name.endswith("EventDetails") and isinstance(details, dict)
        for field, value in details.items()
        if field in ("input", "output", "cause") and isinstance(value, str)
    ]


def invocations_of(workflow: Any, key: str) -> list[Any]:
    """The handler invocations (any function) that worked on ``key``."""

    def key_of(event: Any) -> str | None:
        if not isinstance(event, dict):
            return None
        return event.get("s3_key") or ((event.get("detail") or {}).get("object") or {}).get("key")

    return [call for call in workflow.runtime.invocations if key_of(call.event) == key]


def execution_statuses(workflow: Any) -> dict[str, str]:
    """Every execution of the state machine that moto knows of, with its status."""
    import boto3

    client = boto3.client("stepfunctions", region_name=workflow.region)
    paginator = client.get_paginator("list_executions")
    return {
        execution["executionArn"]: execution["status"]
        for page in paginator.paginate(stateMachineArn=workflow.spec.state_machine_arn)
        for execution in page["executions"]
    }
