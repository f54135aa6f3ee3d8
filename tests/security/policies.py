"""Walk every policy document in a template, and render CloudFormation values as text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Statement:
    logical_id: str
    resource_type: str
    statement: dict[str, Any]

    @property
    def effect(self) -> str:
        return self.statement.get("Effect", "")

    @property
    def actions(self) -> list[str]:
        value = self.statement.get("Action", [])
        return [value] if isinstance(value, str) else list(value)

    @property
    def resources(self) -> list[Any]:
        value = self.statement.get("Resource", [])
        return value if isinstance(value, list) else [value]


def _documents(value: Any) -> Iterator[dict[str, Any]]:
    """Any dict with a ``Statement`` inside ``value`` (PolicyDocument, KeyPolicy, inline
    role policies, trust policies, bucket/queue/topic policies, whatever the type)."""
    if isinstance(value, dict):
        if "Statement" in value:
            yield value
        for item in value.values():
            yield from _documents(item)
    elif isinstance(value, list):
        for item in value:
            yield from _documents(item)


def statements(template: dict[str, Any]) -> Iterator[Statement]:
    for logical_id, resource in template.get("Resources", {}).items():
        for document in _documents(resource.get("Properties", {})):
            listed = document["Statement"]
            for statement in listed if isinstance(listed, list) else [listed]:
                yield Statement(logical_id, resource["Type"], statement)
        if resource["Type"] == "AWS::Lambda::Permission":
            properties = resource["Properties"]
            yield Statement(
                logical_id,
                resource["Type"],
                {"Effect": "Allow", "Action": properties["Action"], "Resource": "*"},
            )


def render(value: Any) -> str:
    """A CloudFormation value as text: ``Fn::Join`` joined, other intrinsics as ``<...>``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
    if isinstance(value, dict) and "Fn::GetStackOutput" in value:
        return "<{StackName}.{OutputName}>".format(**value["Fn::GetStackOutput"])
    return f"<{json.dumps(value, sort_keys=True)}>"


def references(value: Any) -> set[str]:
    """The logical ids (and cross-stack output names) ``value`` refers to."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value:
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        if "Fn::GetStackOutput" in value:
            found.add(value["Fn::GetStackOutput"]["OutputName"])
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def suppressions(template: dict[str, Any], logical_id: str, rule: str) -> list[dict[str, Any]]:
    """The cdk-nag suppressions of ``rule`` on a resource and on its whole stack."""
    own = template["Resources"][logical_id].get("Metadata", {})
    stack = template.get("Metadata", {})
    return [
        entry
        for metadata in (own, stack)
        for entry in metadata.get("cdk_nag", {}).get("rules_to_suppress", [])
        if entry["id"] == rule
    ]
