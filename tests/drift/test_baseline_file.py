"""The baseline file: training writes it beside the model record, the monitor reads it."""

from __future__ import annotations

import json

import drift_errors
import pytest
from baseline_file import validate_baseline

from tests.drift.conftest import confidences, model_record
from training.drift_baseline import build_baseline, main, write_baseline


def test_training_writes_beside_the_record_what_the_monitor_reads(tmp_path):
    record = model_record(confidences(20, 0.5, 1.0, 0), confidences(20, 60, 200, 1))
    record_path = tmp_path / "model-record.json"
    record_path.write_text(json.dumps(record))
    path = write_baseline(record_path)
    assert path == tmp_path / "drift-baseline.json"
    written = json.loads(path.read_text())
    assert written == build_baseline(record)
    assert validate_baseline(written) == written


def test_the_command_writes_it_for_an_older_record_and_names_what_is_missing(tmp_path, capsys):
    record_path = tmp_path / "model-record.json"
    record_path.write_text(json.dumps(model_record([0.9, 0.6], [100.0, 120.0])))
    assert main([str(record_path)]) == 0
    assert (tmp_path / "drift-baseline.json").is_file()
    record_path.write_text(json.dumps({"model_data_url": "/tmp/model.tar.gz", "evaluation": {}}))
    assert main([str(record_path)]) == 1
    assert "evaluation.baseline" in capsys.readouterr().err


@pytest.mark.parametrize(
    "change, message",
    [
        ({"schema": "other/1"}, "scones-drift-baseline/1"),
        ({"brightness": []}, "brightness"),
        ({"top_confidences": [0.9, True]}, "top_confidences"),
        ({"confidence_threshold": 0}, "confidence_threshold"),
        ({"predicted_class_mix": None}, "predicted_class_mix"),
    ],
)
def test_the_monitor_refuses_a_baseline_it_cannot_use(change, message):
    baseline = build_baseline(model_record([0.9, 0.6], [100.0, 120.0]))
    with pytest.raises(drift_errors.InvalidBaseline, match=message):
        validate_baseline({**baseline, **change})
