"""Builds the CDK app: typed settings from the context, the stacks, the cdk-nag checks."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, TypeVar

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.batch_stack import BatchStack
from stacks.checkov import skip_function_checks
from stacks.config import Settings
from stacks.constructs.alarms import AlarmLimits
from stacks.constructs.classifier_endpoint import EndpointProps, EndpointRollout, EndpointScaling
from stacks.constructs.drift_monitor import DriftMonitorSettings
from stacks.constructs.project_logs import ProjectLogs
from stacks.endpoint_stack import EndpointStack
from stacks.monitoring_stack import MonitoringStack
from stacks.storage_stack import StorageStack
from stacks.workflow_stack import WorkflowStack
from training.record import HOW_TO_TRAIN, ModelRecord

REPO_ROOT = Path(__file__).resolve().parents[1]
Props = TypeVar("Props")


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
        ssm_prefix=settings.ssm_prefix,
        incoming_expiration_days=settings.incoming_expiration_days,
        capture_expiration_days=settings.capture_expiration_days,
        description="Scones Unlimited: the project bucket and training role",
    )
    if settings.model_record.is_file():
        _add_serving_stacks(app, settings, storage, ModelRecord.load(settings.model_record))
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


def _fields_of(settings: Settings, props: type[Props]) -> Props:
    """``props``, a dataclass of ``Settings`` fields (same names), filled from ``settings``."""
    fields = dataclasses.fields(props)
    return props(**{field.name: getattr(settings, field.name) for field in fields})


def _add_serving_stacks(
    app: cdk.App, settings: Settings, storage: StorageStack, record: ModelRecord
) -> None:
    """The stacks that serve ``record``: endpoint, workflow, monitoring, batch (if on)."""
    project_logs = ProjectLogs(settings.log_retention, storage.encryption_key)
    endpoint = EndpointStack(
        app,
        "SconesEndpoint",
        props=EndpointProps(
            record=record,
            bucket=storage.bucket,
            encryption_key=storage.encryption_key,
            instance_type=settings.endpoint_instance_type,
            instance_count=settings.endpoint_instance_count,
            capture_sampling_percentage=settings.data_capture_sampling_percentage,
            scaling=EndpointScaling(
                min_capacity=settings.autoscaling_min_capacity,
                max_capacity=settings.autoscaling_max_capacity,
                invocations_per_instance=settings.autoscaling_invocations_per_instance,
            ),
            rollout=EndpointRollout(
                traffic_routing=settings.rollout_traffic_routing,
                step_percentage=settings.rollout_step_percentage,
                bake=cdk.Duration.minutes(settings.rollout_bake_minutes),
                latency_p99_ms=settings.endpoint_latency_p99_ms,
            ),
            project_logs=project_logs,
        ),
        description="Scones Unlimited: the classifier endpoint",
    )
    workflow = WorkflowStack(
        app,
        "SconesWorkflow",
        bucket=storage.bucket,
        project_logs=project_logs,
        endpoint=endpoint.reference,
        class_names=record.class_names,
        confidence_threshold=settings.confidence_threshold,
        classify_reserved_concurrency=settings.classify_reserved_concurrency,
        capacity_retry_minutes=settings.capacity_retry_minutes,
        timeout=cdk.Duration.minutes(settings.workflow_timeout_minutes),
        description="Scones Unlimited: the event-driven classification workflow",
    )
    MonitoringStack(
        app,
        "SconesMonitoring",
        bucket=storage.bucket,
        project_logs=project_logs,
        endpoint=endpoint.reference,
        class_names=record.class_names,
        model_record=settings.model_record,
        drift=_fields_of(settings, DriftMonitorSettings),
        lambdas=workflow.lambdas,
        state_machine=workflow.state_machine,
        limits=_fields_of(settings, AlarmLimits),
        alarm_email=settings.alarm_email,
        rollback_alarms=endpoint.rollback_alarms,
        autoscaling_target=settings.autoscaling_invocations_per_instance,
        description="Scones Unlimited: drift monitor, alarms, notifications, dashboard",
    )
    if settings.batch_mode:
        BatchStack(
            app,
            "SconesBatch",
            lambdas=workflow.lambdas,
            bucket=storage.bucket,
            project_logs=project_logs,
            max_concurrency=settings.batch_max_concurrency,
            tolerated_failure_percentage=settings.batch_tolerated_failure_percentage,
            capacity_retry_minutes=settings.capacity_retry_minutes,
            description="Scones Unlimited: batch classification of an S3 prefix",
        )
