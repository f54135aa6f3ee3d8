"""The whole workflow in one process: moto S3 + Step Functions, real handlers, local endpoint.

``LocalWorkflow(cdk_out)`` reads the synthesized assembly, starts moto (its Step Functions
interpreter on, Docker-free Lambda), creates the bucket (versioning and EventBridge
notifications as the template enables them), the functions and the state machine from the
template, serves the model behind the endpoint name the template gives, and hooks S3 so that
an upload matching the EventBridge rule's pattern starts an execution with the event AWS
would send.

As deployed: every function runs in sandboxes of its own from its bundle, signed with its own
role's session, and reaches moto through its HTTP server on loopback; the state machine
invokes them as its role and the endpoint writes capture as its execution role; moto's access
control is on from the first execution, so a missing grant fails as it would in AWS
(``emulator.iam`` says what moto checks and what it does not). The functions run traced
(``TracingConfig: Active``): their X-Ray datagrams go to ``workflow.xray``, a loopback
listener standing in for the daemon.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emulator.asl import (
    cached_interpreter_clients,
    cached_program_parsing,
    distributed_map_as_moto_parses,
    is_cacheable,
    shorten_retry_waits,
)
from emulator.capacity import reserved_concurrency
from emulator.capture import CaptureConfig
from emulator.cloud_assembly import LOCAL_ACCOUNT
from emulator.distributed_map import aws_distributed_map
from emulator.endpoint import LocalEndpoint
from emulator.errors import ModelLoadError, TemplateError, WorkflowError
from emulator.events import RulePattern, S3EventSource, s3_object_created_hook
from emulator.iam import LocalIdentities, authorize, authorize_lambda_calls, enforced_access
from emulator.lambda_runtime import LambdaRuntime
from emulator.local_aws import default_session, moto_server, placeholder_zip, process_environment
from emulator.spec import WorkflowSpec
from emulator.template import load_workflow
from emulator.xray import XRayListener
from stacks.names import INCOMING_PREFIX

MOTO_CONFIG = {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclass
class Outcome:
    """One execution's result, in the shape ``classify`` prints."""

    file: str | None
    s3_key: str
    status: str
    label: str | None = None
    confidence: float | None = None
    inferences: list[float] | None = None
    error: str | None = None
    cause: str | None = None
    duration_ms: float = 0.0
    execution_arn: str = field(default="", repr=False)

    def as_json(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("execution_arn")
        record["duration_ms"] = round(self.duration_ms, 1)
        return record


class LocalWorkflow:
    """Start with ``with LocalWorkflow(cdk_out) as workflow:``; everything stops on exit.

    ``model``: the archive or record to serve (default: the model asset in the assembly).
    ``capture_dir``: also keep the data capture on disk (it always goes to the moto bucket).
    ``environment``: variables set for every function on top of its own (``THRESHOLD``...).
    ``retry_wait_seconds``: the longest wait of any Retrier locally (the template is untouched).
    ``max_sandboxes``: at most this many sandbox processes per function (default: unbounded).
    The batch state machine, when the app has one, is created too (``emulator.batch`` runs it).
    """

    def __init__(
        self,
        assembly: Path,
        model: Path | None = None,
        *,
        capture_dir: Path | None = None,
        environment: Mapping[str, str] | None = None,
        retry_wait_seconds: int = 1,
        region: str | None = None,
        execution_timeout: float = 120.0,
        max_sandboxes: int | None = None,
    ) -> None:
        self.region = region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        self.spec: WorkflowSpec = load_workflow(Path(assembly), self.region, LOCAL_ACCOUNT)
        model = model or self.spec.model_archive
        if model is None:
            raise ModelLoadError("no model given and none found in the cloud assembly")
        self.model = Path(model)
        self.capture_dir = capture_dir
        self.environment = dict(environment or {})
        self.definition = shorten_retry_waits(self.spec.definition, retry_wait_seconds)
        self.batch_definition = (
            distributed_map_as_moto_parses(
                shorten_retry_waits(self.spec.batch.definition, retry_wait_seconds)
            )
            if self.spec.batch is not None
            else None
        )
        self.execution_timeout = execution_timeout
        self.max_sandboxes = max_sandboxes
        self.endpoint: LocalEndpoint | None = None
        self.runtime: LambdaRuntime | None = None
        self.xray: XRayListener | None = None
        self.executions: dict[str, list[str]] = {}
        self.delivered: dict[str, dict[str, Any]] = {}
        self.rule_pattern = RulePattern(self.spec.event_pattern)
        self._s3_events = S3EventSource(self.region, LOCAL_ACCOUNT)
        self._stack = ExitStack()
        self._sfn: Any = None
        self._s3: Any = None

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> LocalWorkflow:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> LocalWorkflow:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stack.close()

    def _start(self) -> None:
        import boto3
        from moto import mock_aws

        stack = self._stack
        stack.enter_context(
            process_environment(
                {
                    "AWS_ACCESS_KEY_ID": "local",
                    "AWS_SECRET_ACCESS_KEY": "local",
                    "AWS_SESSION_TOKEN": None,
                    "AWS_DEFAULT_REGION": self.region,
                }
            )
        )
        stack.enter_context(mock_aws(config=MOTO_CONFIG))
        moto_url = stack.enter_context(moto_server())
        identities = LocalIdentities(self.spec.assembly, self.region)
        # This process acts as the operator: an IAM user allowed everything.
        stack.enter_context(default_session(identities.operator.as_environment()))
        self._s3 = boto3.client("s3", region_name=self.region)
        self._sfn = boto3.client("stepfunctions", region_name=self.region)
        buckets = {self.spec.bucket} | ({self.spec.capture.bucket} if self.spec.capture else set())
        for bucket in sorted(buckets):
            self._s3.create_bucket(Bucket=bucket)
            if bucket in self.spec.versioned_buckets:
                self._s3.put_bucket_versioning(
                    Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
                )
            if bucket in self.spec.eventbridge_buckets:
                self._s3.put_bucket_notification_configuration(
                    Bucket=bucket,
                    NotificationConfiguration={"EventBridgeConfiguration": {}},
                )

        capture = None
        if self.spec.capture is not None:
            spec = self.spec.capture
            capture = CaptureConfig(
                sampling_percentage=spec.sampling_percentage,
                key_prefix=spec.key_prefix,
                local_dir=self.capture_dir,
                s3_bucket=spec.bucket,
                capture_input=spec.capture_input,
                capture_output=spec.capture_output,
                json_content_types=spec.json_content_types,
                csv_content_types=spec.csv_content_types,
            )
        endpoint_role = identities.role(self.spec.endpoint_role_arn)
        self.endpoint = LocalEndpoint(
            self.model,
            endpoint_name=self.spec.endpoint_name,
            variant_name=self.spec.variant_name,
            capture=capture,
            region=self.region,
            authorize=lambda headers, arn: authorize(
                headers, LOCAL_ACCOUNT, "sagemaker:InvokeEndpoint", arn
            ),
            capture_client=lambda: boto3.client(
                "s3", region_name=self.region, **endpoint_role.client_arguments()
            ),
        )
        stack.callback(self.endpoint.stop)
        self.endpoint.start()

        self.xray = stack.enter_context(XRayListener())
        self.runtime = LambdaRuntime(
            {
                "AWS_ENDPOINT_URL": moto_url,
                "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.endpoint.url,
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_XRAY_DAEMON_ADDRESS": self.xray.address,
                "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",  # as Lambda sets it
                **self.environment,
            },
            max_sandboxes=self.max_sandboxes,
        )
        stack.enter_context(self.runtime)
        lambda_client = boto3.client("lambda", region_name=self.region)
        for function in self.spec.functions:
            created = lambda_client.create_function(
                FunctionName=function.name,
                Runtime="python3.12",
                Role=identities.role(function.role_arn).role_arn,
                Handler=function.code.handler,
                Code={"ZipFile": placeholder_zip()},
                Timeout=function.code.timeout_seconds,
                MemorySize=function.code.memory_mb,
                Environment={"Variables": function.environment},
            )
            if created["FunctionArn"] != function.arn:
                raise TemplateError(
                    f"moto named {function.name} {created['FunctionArn']}, "
                    f"the definition expects {function.arn}"
                )
            self.runtime.register(
                function.name,
                function.code,
                identities.role(function.role_arn).as_environment(),
            )
        names = {function.name for function in self.spec.functions}
        for name, concurrency in reserved_concurrency(self.spec.assembly).items():
            if name in names:
                self.runtime.reserve(name, concurrency)  # Lambda throttles beyond it

        machines = [(self.spec.state_machine_name, self.spec.state_machine_arn, self.definition)]
        roles = [identities.role(self.spec.state_machine_role_arn)]
        if self.spec.batch is not None:
            machines.append(
                (
                    self.spec.batch.state_machine_name,
                    self.spec.batch.state_machine_arn,
                    self.batch_definition,
                )
            )
            roles.append(identities.role(self.spec.batch.role_arn))
            stack.enter_context(aws_distributed_map())
        for (name, arn, definition), role in zip(machines, roles, strict=True):
            created = self._sfn.create_state_machine(
                name=name, definition=json.dumps(definition), roleArn=role.role_arn
            )
            if created["stateMachineArn"] != arn:
                raise TemplateError(
                    f"moto's state machine ARN {created['stateMachineArn']} is not {arn}"
                )
        if is_cacheable(self.definition):
            stack.enter_context(cached_program_parsing({json.dumps(self.definition)}))
        stack.enter_context(
            cached_interpreter_clients(
                roles[0].client_arguments(),
                {role.role_arn: role.client_arguments() for role in roles},
            )
        )
        stack.enter_context(s3_object_created_hook(self._on_object_created))
        stack.enter_context(authorize_lambda_calls(LOCAL_ACCOUNT, self.region))
        stack.enter_context(enforced_access())

    # -- events ---------------------------------------------------------------------------
    def _on_object_created(
        self, bucket: str, key: str, size: int, etag: str, version_id: str | None, reason: str
    ) -> None:
        self.deliver(self._s3_events.object_created(bucket, key, size, etag, version_id, reason))

    def deliver(self, event: Mapping[str, Any]) -> str | None:
        """Deliver ``event`` as EventBridge would (again, for a duplicate): start an execution
        when the rule's pattern matches; return its ARN."""
        event = dict(event)
        if not self.rule_pattern.matches(event):
            return None
        arn = self._sfn.start_execution(
            stateMachineArn=self.spec.state_machine_arn,
            name=uuid.uuid4().hex,
            input=json.dumps(event),
        )["executionArn"]
        detail = event["detail"]
        self.executions.setdefault(
            f"{detail['bucket']['name']}/{detail['object']['key']}", []
        ).append(arn)
        self.delivered[arn] = event
        return arn

    # -- running --------------------------------------------------------------------------
    @property
    def bucket(self) -> str:
        return self.spec.bucket

    def upload(self, body: bytes, key: str) -> list[str]:
        """Put an object into the bucket; return the executions the upload started."""
        before = len(self.executions.get(f"{self.bucket}/{key}", []))
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return self.executions.get(f"{self.bucket}/{key}", [])[before:]

    def classify(self, path: Path, key: str | None = None) -> Outcome:
        """Upload ``path`` under ``incoming/`` and wait for the execution it starts."""
        key = key or f"{INCOMING_PREFIX}{uuid.uuid4().hex[:8]}-{path.name}"
        return self.classify_bytes(path.read_bytes(), key, file=str(path))

    def classify_bytes(self, body: bytes, key: str, file: str | None = None) -> Outcome:
        started = time.perf_counter()
        started_executions = self.upload(body, key)
        if len(started_executions) != 1:
            raise WorkflowError(
                f"uploading {key} started {len(started_executions)} executions, expected 1 "
                f"(the rule's pattern is {json.dumps(self.spec.event_pattern)})"
            )
        return self.wait(started_executions[0], key, file, started)

    def run(self, execution_input: Mapping[str, Any]) -> Outcome:
        """Start an execution with ``execution_input`` directly (no upload) and wait."""
        started = time.perf_counter()
        arn = self._sfn.start_execution(
            stateMachineArn=self.spec.state_machine_arn,
            name=uuid.uuid4().hex,
            input=json.dumps(dict(execution_input)),
        )["executionArn"]
        return self.wait(arn, str(execution_input.get("s3_key", "")), None, started)

    def wait(
        self, execution_arn: str, key: str, file: str | None, started: float | None = None
    ) -> Outcome:
        started = started if started is not None else time.perf_counter()
        deadline = time.monotonic() + self.execution_timeout
        pause = 0.002
        while True:
            described = self._sfn.describe_execution(executionArn=execution_arn)
            if described["status"] in TERMINAL:
                break
            if time.monotonic() > deadline:
                raise WorkflowError(
                    f"{execution_arn} still {described['status']} after "
                    f"{self.execution_timeout:.0f} s"
                )
            # Each poll is a moto call holding the GIL the execution needs: back off.
            time.sleep(pause)
            pause = min(pause * 1.5, 0.02)
        outcome = Outcome(
            file=file,
            s3_key=key,
            status=described["status"],
            duration_ms=(time.perf_counter() - started) * 1000,
            execution_arn=execution_arn,
        )
        if described["status"] == "SUCCEEDED":
            output = json.loads(described.get("output") or "{}")
            outcome.label = output.get("label")
            outcome.confidence = output.get("confidence")
            outcome.inferences = output.get("inferences")
        else:
            outcome.error = described.get("error")
            outcome.cause = described.get("cause")
        return outcome

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's events (states entered, tasks failed and retried...)."""
        return self._sfn.get_execution_history(executionArn=execution_arn)["events"]

    def capture_keys(self) -> list[str]:
        """Write the buffered capture and list its objects in the moto bucket."""
        if self.endpoint is None or self.spec.capture is None:
            return []
        self.endpoint.flush_capture()
        listed = self._s3.list_objects_v2(
            Bucket=self.spec.capture.bucket, Prefix=self.spec.capture.key_prefix
        )
        return [item["Key"] for item in listed.get("Contents", [])]

    def read_object(self, bucket: str, key: str) -> bytes:
        return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
