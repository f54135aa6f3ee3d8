"""The workflow spec names the classification steps' functions by the states that invoke them."""

import pytest

from emulator.errors import TemplateError
from emulator.template import load_workflow
from tests.stacks.support import synthesize, write_record


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("spec")
    app = synthesize(
        workdir,
        model_record=str(write_record(workdir)),
        confidence_threshold="0.93",
        # The spec reads the templates only: no need to bundle the functions.
        **{"aws:cdk:bundling-stacks": []},
    )
    return load_workflow(app.outdir)


def test_each_step_is_the_function_its_state_invokes(spec):
    states = spec.definition["States"]
    for state, function in (
        ("SerializeImage", spec.serialize),
        ("ClassifyImage", spec.classify),
        ("FilterInferences", spec.filter),
    ):
        assert states[state]["Resource"] == function.arn
        assert function in spec.functions
    assert spec.classify.environment["ENDPOINT_NAME"] == spec.endpoint_name


def test_the_threshold_is_the_filter_steps(spec):
    assert spec.threshold == 0.93


def test_the_class_names_are_the_records_as_classify_reads_them(spec):
    assert spec.class_names == ("bicycle", "motorcycle")
    assert spec.filter.environment["CLASS_NAMES"] == "bicycle,motorcycle"


def test_a_step_the_workflow_lacks_is_a_template_error(spec):
    with pytest.raises(TemplateError, match="no Resize state invoking a function"):
        spec.step("Resize")
