"""Synthesize the app for the local mode, once per distinct input (a cache under build/).

Synthesis bundles the Lambda assets (tens of seconds); the assembly only changes when the app,
the stacks, the handlers, the context or the model record change, so it is cached under a key
hashed from all of those. ``synthesize`` runs ``app.py`` as the CDK CLI would.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulator.errors import ModelLoadError, TemplateError
from emulator.inference_model import resolve_model_archive
from training.framework import FRAMEWORK_VERSION, LOCAL_INFERENCE_IMAGE, PY_VERSION
from training.record import (
    RECORD_NAME,
    ModelRecord,
    ModelRecordError,
    archive_class_names,
    read_json,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_ROOT = REPO_ROOT / "build" / "local-mode"
# What synthesis reads: the app, its context, the stacks and the handlers, and the record module.
_APP_INPUTS = (
    "app.py",
    "cdk.json",
    "stacks",
    "lambda_src",
    "training/record.py",
    "training/framework.py",
)


def synthesize(
    repo: Path, outdir: Path, context: Mapping[str, Any] | None = None, quiet: bool = True
) -> Path:
    """Run ``app.py`` as the CDK CLI would (``CDK_OUTDIR``, ``CDK_CONTEXT_JSON``)."""
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(dict(context or {})),
    }
    completed = subprocess.run(
        [sys.executable, "app.py"],
        cwd=repo,
        env=env,
        capture_output=quiet,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise TemplateError(
            f"synthesis failed (exit {completed.returncode}): {completed.stderr or ''}".strip()
        )
    return outdir


def model_record_for(model: Path, workdir: Path) -> Path:
    """The model record to synthesize with: ``model`` itself, or one written for an archive
    (with the class names its configuration declares)."""
    model = model.resolve()
    archive = resolve_model_archive(model)
    if model.suffix == ".json":
        return model
    sibling = archive.parent / RECORD_NAME
    if sibling.is_file():
        try:
            if resolve_model_archive(sibling).resolve() == archive.resolve():
                return sibling
        except ModelLoadError:
            pass
    try:
        class_names = archive_class_names(archive)
    except ModelRecordError as error:
        raise ModelLoadError(f"{error}: pass the model record JSON training wrote") from error
    return ModelRecord(
        model_data_url=str(archive.resolve()),
        # the local mode serves the archive itself and never pulls this image
        image_uri=LOCAL_INFERENCE_IMAGE,
        framework_version=FRAMEWORK_VERSION,
        py_version=PY_VERSION,
        class_names=class_names,
        metrics={},
        training_job_name=f"local-{archive.stem}",
    ).write(workdir / RECORD_NAME)


def _digest(paths: list[Path], extra: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(dict(extra), sort_keys=True).encode())
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cached_assembly(
    record: Path, context: Mapping[str, Any] | None = None, cache_root: Path = CACHE_ROOT
) -> Path:
    """A synthesized ``cdk.out`` for ``record`` (and extra context), reused when unchanged."""
    archive = resolve_model_archive(record)
    record_content = read_json(record)
    full_context = {**dict(context or {}), "model_record": str(record.resolve())}
    key = _digest(
        [REPO_ROOT / name for name in _APP_INPUTS] + [archive],
        {"context": full_context, "record": record_content},
    )
    target = cache_root / f"assembly-{key}"
    if (target / "manifest.json").is_file():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="assembly-", dir=cache_root))
    try:
        synthesize(REPO_ROOT, staging, full_context)
        try:
            staging.rename(target)
        except OSError:
            # Another process synthesized the same inputs first: use its assembly.
            if not (target / "manifest.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
