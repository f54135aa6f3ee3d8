import dataclasses
import json

import pytest

from stacks.application import REPO_ROOT, cdk_json_context
from tests.stacks.support import S3_RECORD, write_record
from training.record import DEFAULT_PATH, DEFAULT_RECORD, ModelRecord, ModelRecordError, read_json


def test_s3_record(tmp_path):
    record = ModelRecord.load(write_record(tmp_path))
    assert record.model_data_url == S3_RECORD["model_data_url"]
    assert (record.image_repository, record.image_tag) == ("pytorch-inference", "2.6.0-cpu-py312")
    assert not record.is_local_artifact


def test_local_artifact_is_resolved_relative_to_the_record(tmp_path):
    (tmp_path / "model.tar.gz").write_bytes(b"artifact")
    record = ModelRecord.load(write_record(tmp_path, model_data_url="model.tar.gz"))
    assert record.is_local_artifact
    assert record.model_data_url == str(tmp_path / "model.tar.gz")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_data_url": "missing/model.tar.gz"}, "neither an s3:// URI nor an existing"),
        (
            {"image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/tensorflow:2"},
            "not an AWS PyTorch inference image",
        ),
    ],
)
def test_unusable_record_is_rejected(tmp_path, changes, message):
    with pytest.raises(ModelRecordError, match=message):
        ModelRecord.load(write_record(tmp_path, **changes))


def test_missing_fields_are_named(tmp_path):
    path = tmp_path / "model-record.json"
    path.write_text(json.dumps({"model_data_url": "s3://b/k"}))
    with pytest.raises(ModelRecordError, match="lacks image_uri, framework_version"):
        ModelRecord.load(path)


def test_not_json(tmp_path):
    path = tmp_path / "model-record.json"
    path.write_text("{not json")
    with pytest.raises(ModelRecordError, match="not readable JSON"):
        ModelRecord.load(path)


def test_cdk_json_deploys_the_default_record():
    assert REPO_ROOT / cdk_json_context()["model_record"] == DEFAULT_PATH
    assert cdk_json_context()["model_record"] == DEFAULT_RECORD


def test_a_file_url_is_a_local_artifact(tmp_path):
    (tmp_path / "model.tar.gz").write_bytes(b"artifact")
    record = ModelRecord.load(write_record(tmp_path, model_data_url="file://model.tar.gz"))
    assert record.model_data_url == str(tmp_path / "model.tar.gz")


def test_a_written_record_loads_as_written(tmp_path):
    record = ModelRecord.load(write_record(tmp_path))
    again = ModelRecord.load(record.write(tmp_path / "again" / "model-record.json"))
    assert again == record
    assert again.to_json() == S3_RECORD


def test_the_local_mode_reads_a_record_naming_only_its_artifact(tmp_path):
    path = tmp_path / "model-record.json"
    path.write_text(json.dumps({"model_data_url": "model.tar.gz"}))
    assert read_json(path, ["model_data_url"]) == {"model_data_url": "model.tar.gz"}
    with pytest.raises(ModelRecordError, match="lacks image_uri"):
        read_json(path, ["model_data_url", "image_uri"])
    with pytest.raises(ModelRecordError, match="no model record at"):
        read_json(tmp_path / "absent.json")


def test_the_class_names_are_the_models_in_output_order(tmp_path):
    record = ModelRecord.load(write_record(tmp_path, class_names=["road", "mountain", "cargo"]))
    assert record.class_names == ("road", "mountain", "cargo")
    assert record.to_json()["class_names"] == ["road", "mountain", "cargo"]


def test_a_record_without_class_names_says_how_to_add_them(tmp_path):
    path = write_record(tmp_path)
    record = json.loads(path.read_text())
    del record["class_names"]
    path.write_text(json.dumps(record))
    with pytest.raises(ModelRecordError) as raised:
        ModelRecord.load(path)
    message = str(raised.value)
    assert f"model record {path} lacks class_names" in message
    assert "python training/train.py" in message  # retrain, or
    assert '"class_names": ["bicycle", "motorcycle"]' in message
    assert "in the order of the model's output" in message


@pytest.mark.parametrize(
    "names",
    [["bicycle"], ["bicycle", "bicycle"], ["bicycle", ""], ["a,b", "c"], [" bicycle", "b"], "ab"],
)
def test_unusable_class_names_are_rejected(tmp_path, names):
    with pytest.raises(ModelRecordError, match="class_names .* are not two or more distinct"):
        ModelRecord.load(write_record(tmp_path, class_names=names))
    with pytest.raises(ModelRecordError, match="not two or more distinct"):
        dataclasses.replace(ModelRecord.load(write_record(tmp_path)), class_names=names)
