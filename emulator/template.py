"""Read the synthesized cloud assembly (``cdk.out``) into what the local mode runs
(``emulator.spec.WorkflowSpec``).

Everything comes from the templates: the Lambda functions (asset folder, ``Handler``,
``Environment``), the state machine definition (its ``DefinitionString`` with the function
ARNs resolved), the EventBridge rule's pattern, the endpoint name, variant and data capture
settings, the roles the functions and the state machine run as, and which function each Task
state invokes; intrinsics resolved by ``emulator.cloud_assembly``. When the app has batch
mode, the state machine with a Distributed Map (``SconesBatch``, started by hand) comes too,
with its role.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from emulator.cloud_assembly import LOCAL_ACCOUNT, CloudAssembly
from emulator.errors import TemplateError
from emulator.lambda_runtime import FunctionCode
from emulator.spec import BatchSpec, CaptureSpec, LambdaFunctionSpec, WorkflowSpec


def _lambda_spec(assembly: CloudAssembly, stack: str, logical_id: str) -> LambdaFunctionSpec:
    properties = assembly.resource(stack, logical_id)["Properties"]
    code_dir = assembly.asset_path(stack, logical_id, properties["Code"].get("S3Key"))
    variables = assembly.resolve(stack, properties.get("Environment", {}).get("Variables", {}))
    return LambdaFunctionSpec(
        logical_id=logical_id,
        name=assembly.physical_name(stack, logical_id),
        arn=assembly.arn(stack, logical_id),
        code=FunctionCode(
            code_dir=code_dir,
            handler=properties["Handler"],
            memory_mb=int(properties.get("MemorySize", 128)),
            timeout_seconds=int(properties.get("Timeout", 3)),
        ),
        environment={key: str(value) for key, value in variables.items()},
        role_arn=str(assembly.resolve(stack, properties["Role"])),
    )


def _capture_spec(assembly: CloudAssembly, stack: str, config: dict[str, Any]) -> CaptureSpec:
    capture = assembly.resolve(stack, config)
    destination = str(capture["DestinationS3Uri"])
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", destination)
    if match is None:
        raise TemplateError(f"DestinationS3Uri {destination!r} is not an s3:// URI")
    modes = {option["CaptureMode"] for option in capture.get("CaptureOptions", [])}
    header = capture.get("CaptureContentTypeHeader", {})
    return CaptureSpec(
        sampling_percentage=int(capture.get("InitialSamplingPercentage", 100)),
        bucket=match.group(1),
        key_prefix=match.group(2).strip("/"),
        json_content_types=tuple(header.get("JsonContentTypes", ["application/json"])),
        csv_content_types=tuple(header.get("CsvContentTypes", ["text/csv"])),
        capture_input="Input" in modes,
        capture_output="Output" in modes,
    )


def _definition(assembly: CloudAssembly, stack: str, logical_id: str) -> dict[str, Any]:
    properties = assembly.resource(stack, logical_id)["Properties"]
    if "DefinitionString" in properties:
        return json.loads(assembly.resolve(stack, properties["DefinitionString"]))
    if "Definition" in properties:
        return assembly.resolve(stack, properties["Definition"])
    raise TemplateError(f"{stack}/{logical_id} has no definition")


def _invoked_functions(
    definition: dict[str, Any], functions: tuple[LambdaFunctionSpec, ...]
) -> dict[str, LambdaFunctionSpec]:
    """The function each Task state invokes (by ARN, or a ``lambda:invoke`` FunctionName)."""
    by_arn = {function.arn: function for function in functions}
    invoked = {}
    for name, state in definition.get("States", {}).items():
        target = state.get("Resource")
        if state.get("Type") == "Task" and str(target).endswith(":lambda:invoke"):
            target = state.get("Parameters", {}).get("FunctionName")
        if state.get("Type") == "Task" and target in by_arn:
            invoked[name] = by_arn[target]
    return invoked


def _is_distributed_map(definition: dict[str, Any]) -> bool:
    return any(
        state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
        for state in definition.get("States", {}).values()
    )


def _batch_spec(assembly: CloudAssembly, workflow_arn: str) -> BatchSpec | None:
    """The one other state machine with a Distributed Map, if the app has one."""
    found = [
        (stack, logical_id, resource, _definition(assembly, stack, logical_id))
        for stack, logical_id, resource in assembly.resources("AWS::StepFunctions::StateMachine")
        if assembly.arn(stack, logical_id) != workflow_arn
    ]
    found = [entry for entry in found if _is_distributed_map(entry[3])]
    if len(found) > 1:
        raise TemplateError(f"expected at most one batch state machine, found {len(found)}")
    if not found:
        return None
    stack, logical_id, resource, definition = found[0]
    return BatchSpec(
        state_machine_name=assembly.physical_name(stack, logical_id),
        state_machine_arn=assembly.arn(stack, logical_id),
        definition=definition,
        role_arn=str(assembly.resolve(stack, resource["Properties"]["RoleArn"])),
    )


def load_workflow(
    outdir: Path, region: str = "us-east-1", account: str = LOCAL_ACCOUNT
) -> WorkflowSpec:
    """The workflow of the assembly in ``outdir``: one state machine, its rule, its endpoint
    (and the batch state machine, when there is one)."""
    assembly = CloudAssembly(outdir, region, account)
    rules = [
        assembly.resolve(stack, rule["Properties"])
        for stack, _, rule in assembly.resources("AWS::Events::Rule")
    ]
    # The event-driven workflow is the state machine an EventBridge rule starts; others (the
    # batch mode's, started by hand) are not part of the local upload path.
    started_by_rules = [
        (stack, logical_id, resource, rule["EventPattern"])
        for stack, logical_id, resource in assembly.resources("AWS::StepFunctions::StateMachine")
        for rule in rules
        if any(
            target.get("Arn") == assembly.arn(stack, logical_id)
            for target in rule.get("Targets", [])
        )
    ]
    if len(started_by_rules) != 1:
        raise TemplateError(
            f"expected one state machine started by an EventBridge rule in {outdir}, found "
            f"{len(started_by_rules)}: was the app synthesized with a model record?"
        )
    sm_stack, sm_id, state_machine, event_pattern = started_by_rules[0]
    properties = state_machine["Properties"]
    definition = _definition(assembly, sm_stack, sm_id)
    machine_arn = assembly.arn(sm_stack, sm_id)
    batch = _batch_spec(assembly, machine_arn)
    definitions = json.dumps(definition) + (json.dumps(batch.definition) if batch else "")
    buckets = event_pattern.get("detail", {}).get("bucket", {}).get("name", [])
    if len(buckets) != 1 or not isinstance(buckets[0], str):
        raise TemplateError(f"the rule's pattern names no single bucket: {event_pattern}")

    functions = tuple(
        _lambda_spec(assembly, stack, logical_id)
        for stack, logical_id, _ in assembly.resources("AWS::Lambda::Function")
        if assembly.arn(stack, logical_id) in definitions
    )

    ep_stack, ep_id, endpoint = assembly.single("AWS::SageMaker::Endpoint")
    config_ref = endpoint["Properties"]["EndpointConfigName"]
    config_id = config_ref["Fn::GetAtt"][0] if "Fn::GetAtt" in config_ref else config_ref["Ref"]
    config = assembly.resource(ep_stack, config_id)["Properties"]
    variant = config["ProductionVariants"][0]
    capture_config = config.get("DataCaptureConfig")
    capture = (
        _capture_spec(assembly, ep_stack, capture_config)
        if capture_config and capture_config.get("EnableCapture", True)
        else None
    )
    model_archive = None
    model_ref = variant.get("ModelName")
    if not (isinstance(model_ref, dict) and "Fn::GetAtt" in model_ref):
        raise TemplateError(f"the endpoint's variant names no model of the assembly: {model_ref}")
    model_id = model_ref["Fn::GetAtt"][0]
    model = assembly.resource(ep_stack, model_id)["Properties"]
    try:
        model_url = model["PrimaryContainer"].get("ModelDataUrl")
        model_archive = assembly.asset_path(ep_stack, model_id, model_url)
    except TemplateError:
        model_archive = None
    eventbridge_buckets = frozenset(
        str(assembly.resolve(stack, resource["Properties"]["BucketName"]))
        for stack, _, resource in assembly.resources("Custom::S3BucketNotifications")
        if "EventBridgeConfiguration" in resource["Properties"].get("NotificationConfiguration", {})
    )
    versioned_buckets = frozenset(
        assembly.physical_name(stack, logical_id)
        for stack, logical_id, resource in assembly.resources("AWS::S3::Bucket")
        if resource.get("Properties", {}).get("VersioningConfiguration", {}).get("Status")
        == "Enabled"
    )
    return WorkflowSpec(
        functions=functions,
        steps=_invoked_functions(definition, functions),
        state_machine_name=assembly.physical_name(sm_stack, sm_id),
        state_machine_arn=machine_arn,
        definition=definition,
        event_pattern=event_pattern,
        bucket=buckets[0],
        endpoint_name=assembly.physical_name(ep_stack, ep_id),
        variant_name=str(assembly.resolve(ep_stack, variant.get("VariantName", "AllTraffic"))),
        capture=capture,
        model_archive=model_archive,
        eventbridge_buckets=eventbridge_buckets,
        versioned_buckets=versioned_buckets,
        assembly=assembly,
        state_machine_role_arn=str(assembly.resolve(sm_stack, properties["RoleArn"])),
        endpoint_role_arn=str(assembly.resolve(ep_stack, model["ExecutionRoleArn"])),
        batch=batch,
    )
