"""A synthesized cloud assembly (``cdk.out``) with CloudFormation's intrinsics resolved.

Intrinsics are resolved the way CloudFormation would for one local account: ``Ref``,
``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ``Fn::Select``, ``Fn::Split``, ``Fn::FindInMap``,
``Fn::ImportValue`` and ``Fn::GetStackOutput`` (through the other stacks' ``Outputs``), and the
pseudo parameters. Physical names that CloudFormation would generate are deterministic here
(``<stack>-<logical id>``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from emulator.errors import TemplateError

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
