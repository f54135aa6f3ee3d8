"""What the local mode runs, as ``emulator.template`` reads it from the synthesized assembly.

Every value is resolved (no intrinsic left). The classification steps' functions are known by
the Task state that invokes them (``SerializeImage``, ``ClassifyImage``, ``FilterInferences``,
the names ``stacks/names.py`` gives the steps), the confidence threshold is the filter
function's ``THRESHOLD`` variable and the model's classes the classify function's
``CLASS_NAMES``: ``spec.serialize``, ``spec.classify``, ``spec.filter``, ``spec.threshold``,
``spec.class_names``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.cloud_assembly import CloudAssembly
from emulator.errors import TemplateError
from emulator.lambda_runtime import FunctionCode
from stacks.names import (
    CLASS_NAMES_VARIABLE,
    CLASSIFY_STEP,
    FILTER_STEP,
    SERIALIZE_STEP,
    THRESHOLD_VARIABLE,
)


@dataclass(frozen=True)
class LambdaFunctionSpec:
    """A function the workflow invokes: its names, the role it runs as, its code and
    environment."""

    logical_id: str
    name: str
    arn: str
    role_arn: str
    code: FunctionCode
    environment: dict[str, str]


@dataclass(frozen=True)
class BatchSpec:
    """The batch mode's state machine: a Distributed Map, started with a prefix."""

    state_machine_name: str
    state_machine_arn: str
    definition: dict[str, Any]
    role_arn: str


@dataclass(frozen=True)
class CaptureSpec:
    """The endpoint's data capture: its sampling, destination and content types."""

    sampling_percentage: int
    bucket: str
    key_prefix: str
    json_content_types: tuple[str, ...]
    csv_content_types: tuple[str, ...]
    capture_input: bool
    capture_output: bool


@dataclass(frozen=True)
class WorkflowSpec:
    """The event-driven workflow: its state machine and rule, the functions its states invoke
    (``steps``: by state name), the endpoint, the buckets; the batch machine when there is one."""

    functions: tuple[LambdaFunctionSpec, ...]
    steps: Mapping[str, LambdaFunctionSpec]
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
    versioned_buckets: frozenset[str]
    assembly: CloudAssembly
    state_machine_role_arn: str
    endpoint_role_arn: str
    batch: BatchSpec | None = None

    def step(self, state: str) -> LambdaFunctionSpec:
        """The function the Task state ``state`` of the workflow invokes."""
        try:
            return self.steps[state]
        except KeyError:
            raise TemplateError(
                f"the workflow has no {state} state invoking a function "
                f"(its Task states: {', '.join(self.steps) or 'none'})"
            ) from None

    @property
    def serialize(self) -> LambdaFunctionSpec:
        return self.step(SERIALIZE_STEP)

    @property
    def classify(self) -> LambdaFunctionSpec:
        return self.step(CLASSIFY_STEP)

    @property
    def filter(self) -> LambdaFunctionSpec:
        return self.step(FILTER_STEP)

    @property
    def threshold(self) -> float:
        """The confidence below which the filter step fails an image (``LowConfidence``)."""
        value = self.filter.environment.get(THRESHOLD_VARIABLE)
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise TemplateError(
                f"{self.filter.name} has no numeric {THRESHOLD_VARIABLE} variable: {value!r}"
            ) from None

    @property
    def class_names(self) -> tuple[str, ...]:
        """The model's classes, in the order of the endpoint's answer (the model record's)."""
        value = self.classify.environment.get(CLASS_NAMES_VARIABLE, "")
        names = tuple(name for name in value.split(",") if name)
        if len(names) < 2:
            raise TemplateError(
                f"{self.classify.name} has no {CLASS_NAMES_VARIABLE} variable naming two or more "
                f"classes: {value!r}"
            )
        return names
