"""filter_inferences: confident inferences pass with a label, the rest fail as LowConfidence."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import filter_errors
import pytest

import lambda_src.filter_inferences.handler as filter_inferences

KEY = "incoming/bike.png"


def classified(inferences) -> dict:
    return {"s3_bucket": "scones-images", "s3_key": KEY, "inferences": inferences}


@pytest.fixture(autouse=True)
def threshold(monkeypatch):
    monkeypatch.setenv("THRESHOLD", "0.9")


def test_confident_inference_passes_with_label_and_confidence(lambda_context, emitted_metrics):
    result = filter_inferences.lambda_handler(classified([0.05, 0.95]), lambda_context)

    assert result == {
        "s3_bucket": "scones-images",
        "s3_key": KEY,
        "inferences": [0.05, 0.95],
        "label": "motorcycle",
        "confidence": 0.95,
    }
    metrics = emitted_metrics()
    assert metrics["ConfidentInferences"] == 1
    assert metrics["LowConfidenceInferences"] == 0


def test_bicycle_is_the_first_class(lambda_context):
    result = filter_inferences.lambda_handler(classified([0.97, 0.03]), lambda_context)

    assert (result["label"], result["confidence"]) == ("bicycle", 0.97)


def test_confidence_exactly_at_the_threshold_passes(lambda_context):
    result = filter_inferences.lambda_handler(classified([0.1, 0.9]), lambda_context)

    assert result["confidence"] == 0.9


def test_confidence_just_below_the_threshold_is_low_confidence(lambda_context, emitted_metrics):
    with pytest.raises(filter_errors.LowConfidence) as raised:
        filter_inferences.lambda_handler(classified([0.10001, 0.89999]), lambda_context)

    message = str(raised.value)
    assert "0.89999" in message and "0.9" in message and KEY in message
    metrics = emitted_metrics()
    assert metrics["LowConfidenceInferences"] == 1
    assert metrics["ConfidentInferences"] == 0


def test_threshold_of_one_needs_certainty(lambda_context, monkeypatch):
    monkeypatch.setenv("THRESHOLD", "1")

    assert filter_inferences.lambda_handler(classified([0, 1]), lambda_context)["label"] == (
        "motorcycle"
    )
    with pytest.raises(filter_errors.LowConfidence):
        filter_inferences.lambda_handler(classified([0.0001, 0.9999]), lambda_context)


def test_a_tie_goes_to_the_first_class(lambda_context, monkeypatch):
    monkeypatch.setenv("THRESHOLD", "0.5")

    assert filter_inferences.lambda_handler(classified([0.5, 0.5]), lambda_context)["label"] == (
        "bicycle"
    )


@pytest.mark.parametrize("value", ["0", "-0.1", "1.0001", "1.5", "nan", "inf", "ninety", ""])
def test_invalid_threshold_is_configuration_error(lambda_context, monkeypatch, value):
    monkeypatch.setenv("THRESHOLD", value)

    with pytest.raises(filter_errors.ConfigurationError, match=r"THRESHOLD.*\(0, 1\]"):
        filter_inferences.lambda_handler(classified([0.05, 0.95]), lambda_context)


def test_the_label_is_named_from_class_names(lambda_context, monkeypatch):
    monkeypatch.setenv("CLASS_NAMES", "road,mountain,cargo")

    result = filter_inferences.lambda_handler(classified([0.02, 0.03, 0.95]), lambda_context)
    assert (result["label"], result["confidence"]) == ("cargo", 0.95)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "CLASS_NAMES is not set"),
        ("bicycle", "CLASS_NAMES='bicycle' is not two or more distinct class names"),
        (" ,motorcycle", "CLASS_NAMES"),
        ("bicycle,bicycle", "CLASS_NAMES"),
    ],
)
def test_invalid_class_names_are_configuration_error(lambda_context, monkeypatch, value, message):
    monkeypatch.setenv("CLASS_NAMES", value)

    with pytest.raises(filter_errors.ConfigurationError, match=message):
        filter_inferences.lambda_handler(classified([0.05, 0.95]), lambda_context)


def test_missing_threshold_is_configuration_error(lambda_context, monkeypatch):
    monkeypatch.delenv("THRESHOLD")

    with pytest.raises(filter_errors.ConfigurationError, match="THRESHOLD is not set"):
        filter_inferences.lambda_handler(classified([0.05, 0.95]), lambda_context)


@pytest.mark.parametrize(
    "event",
    [
        {"s3_bucket": "scones-images", "s3_key": KEY},
        classified(None),
        classified([]),
        classified([0.95]),
        classified([0.05, 0.9, 0.05]),
        classified(["0.05", "0.95"]),
        classified([True, False]),
        classified([float("nan"), 0.95]),
        classified([-0.5, 1.5]),
        classified({"bicycle": 0.05, "motorcycle": 0.95}),
        {"s3_bucket": "scones-images", "inferences": [0.05, 0.95]},
        [0.05, 0.95],
    ],
)
def test_malformed_input_is_invalid_input(lambda_context, event):
    with pytest.raises(filter_errors.InvalidInput):
        filter_inferences.lambda_handler(event, lambda_context)


def test_handler_loads_by_path_as_the_lambda_runtime_and_emulator_do(lambda_context):
    """Loaded by path as a top-level module, with its folder on the import path, the handler
    finds the modules beside it (filter_errors, filter_settings) by their own names."""
    path = Path(filter_inferences.__file__)
    spec = importlib.util.spec_from_file_location("handler", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    result = module.lambda_handler(classified([0.02, 0.98]), lambda_context)

    assert result["label"] == "motorcycle"
    with pytest.raises(module.LowConfidence):
        module.lambda_handler(classified([0.5, 0.5]), lambda_context)
