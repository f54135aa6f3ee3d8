"""Read the synthesized cloud assembly (``cdk.out``) into what the local mode runs.

Everything comes from the templates: the Lambda functions (asset folder, ``Handler``,
``Environment``), the state machine definition (its ``DefinitionString`` with the function
ARNs resolved), the EventBridge rule's pattern, the endpoint name, variant and data capture
settings. Intrinsics are resolved the way CloudFormation would for one local account:
``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ``Fn::Select``, ``Fn::Split``,
``Fn::FindInMap``, ``Fn::ImportValue`` and ``Fn::GetStackOutput`` (through the other stacks'
``Outputs``), and the pseudo parameters. Physical names that CloudFormation would generate
are deterministic here (``<stack>-<logical id>``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.errors import TemplateError
from emulator.lambda_runtime import FunctionCode

LOCAL_ACCOUNT = "123456789012"
_NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::SageMaker::Endpoint": "EndpointName",
    "AWS::SageMaker::EndpointConfig": "EndpointConfigName",
    "AWS::SageMaker::Model": "ModelName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
}
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass(frozen=True)
class LambdaFunctionSpec:
    logical_id: str
    name: str
    arn: str
    code: FunctionCode
    environment: dict[str, str]


@dataclass(frozen=True)
class CaptureSpec:
    sampling_percentage: int
    bucket: str
    key_prefix: str
    json_content_types: tuple[str, ...]
    csv_content_types: tuple[str, ...]
    capture_input: bool
    capture_output: bool


@dataclass(frozen=True)
class WorkflowSpec:
    """What the local mode needs from the assembly, all intrinsics resolved."""

    functions: tuple[LambdaFunctionSpec, ...]
    state_machine_name: str
    state_machine_arn: str
    definition: dict[str, Any]
    event_pattern: dict[str, Any]
    bucket: str
    endpoint_name: str
    variant_name: str
    capture: CaptureSpec | None
    model_archive: Path | None
    eventbridge_buckets: frozenset[str]
    versioned_buckets: frozenset[str] = frozenset()


class CloudAssembly:
    """The stacks of one ``cdk.out`` directory, with an intrinsic-function resolver."""

    def __init__(self, outdir: Path, region: str = "us-east-1", account: str = LOCAL_ACCOUNT):
        self.outdir = Path(outdir)
        self.region = region
        self.account = account
        manifest_path = self.outdir / "manifest.json"
        if not manifest_path.is_file():
            raise TemplateError(
                f"{self.outdir} is not a cloud assembly (no manifest.json): synthesize first"
            )
        manifest = json.loads(manifest_path.read_text())
        self.templates: dict[str, dict[str, Any]] = {}
        for artifact_id, artifact in manifest.get("artifacts", {}).items():
            if artifact.get("type") != "aws:cloudformation:stack":
                continue
            properties = artifact.get("properties", {})
            name = properties.get("stackName", artifact_id)
            self.templates[name] = json.loads(
                (self.outdir / properties["templateFile"]).read_text()
            )
        self._asset_sources: dict[str, str] = {}
        for assets_file in self.outdir.glob("*.assets.json"):
            for asset_hash, asset in json.loads(assets_file.read_text()).get("files", {}).items():
                self._asset_sources[asset_hash] = asset["source"]["path"]

    # -- lookups --------------------------------------------------------------------------
    def resources(self, resource_type: str) -> list[tuple[str, str, dict[str, Any]]]:
        """``(stack, logical id, resource)`` of every resource of ``resource_type``."""
        return [
            (stack, logical_id, resource)
            for stack, template in self.templates.items()
            for logical_id, resource in template.get("Resources", {}).items()
            if resource.get("Type") == resource_type
        ]

    def single(self, resource_type: str) -> tuple[str, str, dict[str, Any]]:
        found = self.resources(resource_type)
        if len(found) != 1:
            raise TemplateError(
                f"expected one {resource_type} in {self.outdir}, found {len(found)}"
                + ("" if found else ": was the app synthesized with a model record?")
            )
        return found[0]

    def resource(self, stack: str, logical_id: str) -> dict[str, Any]:
        try:
            return self.templates[stack]["Resources"][logical_id]
        except KeyError:
            raise TemplateError(f"{stack} has no resource {logical_id}") from None

    def asset_path(self, stack: str, logical_id: str, s3_key: Any) -> Path:
        """The local folder (or file) of an asset, from metadata or the assets manifest."""
        metadata = self.resource(stack, logical_id).get("Metadata", {})
        if "aws:asset:path" in metadata:
            return self.outdir / metadata["aws:asset:path"]
        key = self.resolve(stack, s3_key)
        asset_hash = str(key).rsplit("/", 1)[-1].split(".", 1)[0]
        if asset_hash not in self._asset_sources:
            raise TemplateError(f"{stack}/{logical_id}: no asset {asset_hash} in {self.outdir}")
        return self.outdir / self._asset_sources[asset_hash]

    # -- physical names -------------------------------------------------------------------
    def physical_name(self, stack: str, logical_id: str) -> str:
        resource = self.resource(stack, logical_id)
        resource_type = resource.get("Type", "")
        name_property = _NAME_PROPERTIES.get(resource_type)
        properties = resource.get("Properties", {})
        if name_property and name_property in properties:
            return str(self.resolve(stack, properties[name_property]))
        name = f"{stack}-{logical_id}"
        if resource_type == "AWS::S3::Bucket":
            return name.lower()[:63]
        return name[:64]

    def arn(self, stack: str, logical_id: str) -> str:
        resource_type = self.resource(stack, logical_id).get("Type", "")
        name = self.physical_name(stack, logical_id)
        region, account = self.region, self.account
        arns = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
            "AWS::StepFunctions::StateMachine": (
                f"arn:aws:states:{region}:{account}:stateMachine:{name}"
            ),
            "AWS::IAM::Role": f"arn:aws:iam::{account}:role/{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{account}:{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{region}:{account}:log-group:{name}:*",
            "AWS::SageMaker::Endpoint": (
                f"arn:aws:sagemaker:{region}:{account}:endpoint/{name.lower()}"
            ),
            "AWS::SageMaker::EndpointConfig": (
                f"arn:aws:sagemaker:{region}:{account}:endpoint-config/{name.lower()}"
            ),
            "AWS::SageMaker::Model": f"arn:aws:sagemaker:{region}:{account}:model/{name.lower()}",
        }
        service = resource_type.split("::")[1].lower() if "::" in resource_type else "unknown"
        return arns.get(resource_type, f"arn:aws:{service}:{region}:{account}:{name}")

    def ref(self, stack: str, name: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::StackName": stack,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": (
                f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{stack}/local"
            ),
        }
        if name in pseudo:
            return pseudo[name]
        resource_type = self.resource(stack, name).get("Type", "")
        if resource_type in (
            "AWS::StepFunctions::StateMachine",
            "AWS::SageMaker::Endpoint",
            "AWS::SageMaker::EndpointConfig",
        ):
            return self.arn(stack, name)
        if resource_type == "AWS::SQS::Queue":
            physical = self.physical_name(stack, name)
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{physical}"
        return self.physical_name(stack, name)

    def get_att(self, stack: str, logical_id: str, attribute: str) -> str:
        if attribute == "Arn":
            return self.arn(stack, logical_id)
        if attribute in ("EndpointName", "EndpointConfigName", "ModelName", "Name", "QueueName"):
            return self.physical_name(stack, logical_id)
        raise TemplateError(f"{stack}: Fn::GetAtt {logical_id}.{attribute} is not emulated")

    def stack_output(self, stack: str, output_name: str) -> Any:
        try:
            output = self.templates[stack]["Outputs"][output_name]
        except KeyError:
            raise TemplateError(f"stack {stack} has no output {output_name}") from None
        return self.resolve(stack, output["Value"])

    def import_value(self, export_name: str) -> Any:
        for stack, template in self.templates.items():
            for output in template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if export is not None and self.resolve(stack, export) == export_name:
                    return self.resolve(stack, output["Value"])
        raise TemplateError(f"no stack exports {export_name!r}")

    # -- intrinsics -----------------------------------------------------------------------
    def resolve(self, stack: str, value: Any) -> Any:
        """``value`` with every intrinsic function resolved in the context of ``stack``."""
        if isinstance(value, list):
            return [self.resolve(stack, item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref" or function.startswith("Fn::"):
                return self._intrinsic(stack, function, argument)
        return {key: self.resolve(stack, item) for key, item in value.items()}

    def _intrinsic(self, stack: str, function: str, argument: Any) -> Any:
        if function == "Ref":
            return self.ref(stack, argument)
        if function == "Fn::GetAtt":
            logical_id, attribute = (
                argument.split(".", 1) if isinstance(argument, str) else argument
            )
            return self.get_att(stack, logical_id, attribute)
        if function == "Fn::Join":
            delimiter, parts = argument
            return delimiter.join(str(part) for part in self.resolve(stack, parts))
        if function == "Fn::Sub":
            return self._sub(stack, argument)
        if function == "Fn::Select":
            index, items = self.resolve(stack, argument)
            return items[int(index)]
        if function == "Fn::Split":
            delimiter, text = self.resolve(stack, argument)
            return text.split(delimiter)
        if function == "Fn::FindInMap":
            mapping, key, name = self.resolve(stack, argument)
            try:
                return self.templates[stack]["Mappings"][mapping][key][name]
            except KeyError:
                raise TemplateError(f"{stack}: no mapping {mapping}/{key}/{name}") from None
        if function == "Fn::ImportValue":
            return self.import_value(self.resolve(stack, argument))
        if function == "Fn::GetStackOutput":
            resolved = self.resolve(stack, argument)
            return self.stack_output(resolved["StackName"], resolved["OutputName"])
        raise TemplateError(f"{stack}: {function} is not emulated")

    def _sub(self, stack: str, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = self.resolve(stack, variables)

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(stack, logical_id, attribute)
            return self.ref(stack, name)

        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")


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


def load_workflow(
    outdir: Path, region: str = "us-east-1", account: str = LOCAL_ACCOUNT
) -> WorkflowSpec:
    """The workflow of the assembly in ``outdir``: one state machine, its rule, its endpoint."""
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
    if "DefinitionString" in properties:
        definition = json.loads(assembly.resolve(sm_stack, properties["DefinitionString"]))
    elif "Definition" in properties:
        definition = assembly.resolve(sm_stack, properties["Definition"])
    else:
        raise TemplateError(f"{sm_stack}/{sm_id} has no definition")

    machine_arn = assembly.arn(sm_stack, sm_id)
    buckets = event_pattern.get("detail", {}).get("bucket", {}).get("name", [])
    if len(buckets) != 1 or not isinstance(buckets[0], str):
        raise TemplateError(f"the rule's pattern names no single bucket: {event_pattern}")

    functions = tuple(
        _lambda_spec(assembly, stack, logical_id)
        for stack, logical_id, _ in assembly.resources("AWS::Lambda::Function")
        if assembly.arn(stack, logical_id) in json.dumps(definition)
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
    model_id = (
        variant["ModelName"]["Fn::GetAtt"][0]
        if isinstance(variant.get("ModelName"), dict) and "Fn::GetAtt" in variant["ModelName"]
        else None
    )
    if model_id is not None:
        model_url = assembly.resource(ep_stack, model_id)["Properties"]["PrimaryContainer"].get(
            "ModelDataUrl"
        )
        try:
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
    )
