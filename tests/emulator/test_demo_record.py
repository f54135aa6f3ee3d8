"""The demo's model: reused when the stacks can deploy it, trained again when they cannot."""

import io
import json

import training.train
from emulator.demo import model_record
from tests.stacks.support import write_record


def test_a_deployable_record_is_reused(tmp_path, monkeypatch):
    record = write_record(tmp_path)
    monkeypatch.setattr(training.train, "train_local", lambda **_: 1 / 0)
    log = io.StringIO()
    assert model_record(tmp_path, tmp_path / "data", None, log) == record
    assert log.getvalue() == f"model: reusing {record}\n"


def test_a_record_without_class_names_is_trained_again_saying_why(tmp_path, monkeypatch):
    record = write_record(tmp_path)
    older = json.loads(record.read_text())
    del older["class_names"]
    record.write_text(json.dumps(older))
    trained = []
    monkeypatch.setattr(training.train, "train_local", lambda **options: trained.append(options))
    log = io.StringIO()
    model_record(tmp_path, tmp_path / "data", 3, log)
    assert trained == [
        {
            "archive": None,
            "output": tmp_path,
            "epochs": 3,
            "data_dir": tmp_path / "data",
            "skip_staging": True,
        }
    ]
    assert log.getvalue().startswith(f"model: cannot use {record} (model record {record} lacks")
    assert log.getvalue().endswith("; training locally over it\n")
