"""Builds the CDK app: typed settings from the context, the stacks, the cdk-nag checks."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.batch_stack import BatchStack
from stacks.checkov import skip_function_checks
from stacks.config import Settings
from stacks.endpoint_stack import EndpointStack
from stacks.monitoring_stack import MonitoringStack
from stacks.storage_stack import StorageStack
from stacks.workflow_stack import WorkflowStack
from training.record import HOW_TO_TRAIN, ModelRecord

REPO_ROOT = Path(__file__).resolve().parents[1]


def cdk_json_context() -> dict[str, Any]:
    """The context defaults in cdk.json, so that `python app.py` works without the CLI.

    Asset metadata (each function's bundle folder) is on, as the CLI turns it on, so that a
    plain `python app.py` synthesizes the same templates the local mode reads.
    """
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return {"aws:cdk:enable-asset-metadata": True, **context}


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> cdk.App:
    """The whole app. `context` overrides cdk.json; the CLI's `-c` overrides both.

    Raises `ConfigError` or `ModelRecordError` with a one-line message on bad input.
    """
    if outdir is None and "CDK_OUTDIR" not in os.environ:
        outdir = "cdk.out"
    app = cdk.App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    settings = Settings.from_context(app.node.try_get_context)
    cdk.Tags.of(app).add("project", settings.project_name)

    storage = StorageStack(
        app,
        "SconesStorage",
        settings=settings,
        description="Scones Unlimited: the project bucket and training role",
    )
    if settings.model_record.is_file():
        record = ModelRecord.load(settings.model_record)
        endpoint = EndpointStack(
            app,
            "SconesEndpoint",
            settings=settings,
            storage=storage,
            record=record,
            description="Scones Unlimited: the classifier endpoint",
        )
        workflow = WorkflowStack(
            app,
            "SconesWorkflow",
            settings=settings,
            storage=storage,
            endpoint=endpoint,
            description="Scones Unlimited: the event-driven classification workflow",
        )
        MonitoringStack(
            app,
            "SconesMonitoring",
            settings=settings,
            storage=storage,
            endpoint=endpoint,
            workflow=workflow,
            description="Scones Unlimited: drift monitor, alarms, notifications, dashboard",
        )
        if settings.batch_mode:
            BatchStack(
                app,
                "SconesBatch",
                settings=settings,
                storage=storage,
                workflow=workflow,
                description="Scones Unlimited: batch classification of an S3 prefix",
            )
    else:
        print(
            f"note: no model record at {settings.model_record}, so only SconesStorage is "
            f"synthesized (deploy it first: training needs its bucket); {HOW_TO_TRAIN}",
            file=sys.stderr,
        )
    for stack in app.node.children:
        if isinstance(stack, cdk.Stack):
            skip_function_checks(stack)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app
