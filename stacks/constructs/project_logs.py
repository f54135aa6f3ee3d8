"""Where the project's log groups go: one retention, the project key, removed with their stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct


@dataclass(frozen=True)
class ProjectLogs:
    retention: logs.RetentionDays
    encryption_key: kms.IKey

    def log_group(self, scope: Construct, construct_id: str, **props: Any) -> logs.LogGroup:
        return logs.LogGroup(
            scope,
            construct_id,
            retention=self.retention,
            encryption_key=self.encryption_key,
            removal_policy=RemovalPolicy.DESTROY,
            **props,
        )


def logged_state_machine(
    scope: Construct,
    construct_id: str,
    *,
    definition: sfn.IChainable,
    timeout: Duration,
    log_group_id: str,
    project_logs: ProjectLogs,
) -> sfn.StateMachine:
    """A Standard state machine, traced, logging every event (not the data) to its own group."""
    return sfn.StateMachine(
        scope,
        construct_id,
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        state_machine_type=sfn.StateMachineType.STANDARD,
        timeout=timeout,
        tracing_enabled=True,
        logs=sfn.LogOptions(
            destination=project_logs.log_group(scope, log_group_id),
            level=sfn.LogLevel.ALL,
            include_execution_data=False,
        ),
    )
