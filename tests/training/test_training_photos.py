"""Real-photo support on generated photos: reading labelled folders, the evaluation through the
artifact's handlers with its contact sheet, and staging (checks, the stratified hold-out)."""

from __future__ import annotations

import csv
import json
import shutil

import boto3
import numpy as np
import pytest
from moto import mock_aws
from photo_fixtures import write_photos
from PIL import Image
from test_training_cloud import LAUNCH_ARGUMENTS, capture_create_requests, prepare_account

from training import evaluate, train
from training.photos import PhotoFolderError, labelled_photos, stratified_split
from training.stage_data import DataQualityError, StagingError
from training.stage_photos import PHOTOS_TEST, stage_photos

BUCKET = "scones-data-123"


def pack(model_dir, dest):
    return train.pack_model_dir(model_dir, dest)


def test_folders_give_labels_and_an_unknown_folder_is_named(tmp_path):
    root = write_photos(tmp_path / "photos", {"bicycle": 3, "motorcycle": 2})
    photos = labelled_photos(root)
    assert [p.class_name for p in photos] == ["bicycle"] * 3 + ["motorcycle"] * 2
    assert {p.source for p in photos} == {"-"}

    (root / "scooter").mkdir()
    with pytest.raises(PhotoFolderError, match=r"unknown label 'scooter' \(folder .*scooter\)"):
        labelled_photos(root)


def test_manifest_labels_a_flat_folder_and_gives_sources(tmp_path):
    root = write_photos(tmp_path / "photos", {"bicycle": 2, "motorcycle": 2}, sources=("a", "b"))
    for path in list(root.rglob("*_*.*")):
        path.rename(root / path.name)
    rows = list(csv.DictReader((root / "manifest.csv").open()))
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("file", "label", "source"))
        writer.writerows((r["file"].split("/")[1], r["label"].upper(), r["source"]) for r in rows)

    photos = labelled_photos(root)
    assert [(p.path.parent, p.class_name, p.source) for p in photos] == [
        (root, "bicycle", "a"),
        (root, "bicycle", "b"),
        (root, "motorcycle", "a"),
        (root, "motorcycle", "b"),
    ]


def test_stratified_split_holds_out_of_every_class_and_source(tmp_path):
    root = write_photos(tmp_path / "photos", {"bicycle": 20, "motorcycle": 10}, sources=("a", "b"))
    photos = labelled_photos(root)
    kept, held_out = stratified_split(photos, 0.2, seed=3)
    assert {p.path for p in kept}.isdisjoint({p.path for p in held_out})
    assert len(kept) + len(held_out) == 30
    groups = sorted((p.class_name, p.source) for p in held_out)
    assert groups == [("bicycle", "a")] * 2 + [("bicycle", "b")] * 2 + [
        ("motorcycle", "a"),
        ("motorcycle", "b"),
    ]
    assert stratified_split(photos, 0.2, seed=3) == (kept, held_out)


def test_evaluation_on_photos_scores_through_the_handlers(model_dir, tmp_path, capsys):
    root = write_photos(
        tmp_path / "photos", {"bicycle": 4, "motorcycle": 4}, sources=("studio", "street")
    )
    Image.fromarray(np.full((2400, 3200, 3), 90, np.uint8)).save(
        root / "motorcycle" / "phone.jpg", quality=85
    )
    with (root / "manifest.csv").open("a", newline="") as handle:
        csv.writer(handle).writerow(("motorcycle/phone.jpg", "motorcycle", "phone"))
    model = pack(model_dir, tmp_path / "model.tar.gz")

    code = evaluate.main(
        ["--model", str(model), "--images", str(root), "--output", str(tmp_path / "eval")]
        + ["--threshold", "0.5"]
    )

    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "source phone" in out and "source street" in out
    assert (tmp_path / "eval" / "misclassified_photos.png").stat().st_size > 1000
    from training.evaluate_photos import evaluate_photo_folder

    result = evaluate_photo_folder(model, root, tmp_path / "again", threshold=0.5)
    assert result["test_size"] == 9 and result["coverage"] == 1.0
    assert result["per_source"]["phone"]["support"] == 1
    assert result["baseline"]["width"][-1] == 3200
    wrong = len(result["misclassified"])
    assert result["accuracy"] == pytest.approx(1 - wrong / 9)
    per_class = result["per_class"]
    assert sum(b["support"] * (1 - b["accuracy"]) for b in per_class.values()) == pytest.approx(
        wrong
    )
    for item in result["misclassified"]:
        assert item["truth"] != item["predicted"] and (root / item["file"]).is_file()


def test_evaluate_needs_a_data_folder(model_dir, tmp_path, capsys):
    model = pack(model_dir, tmp_path / "model.tar.gz")
    (tmp_path / "photos" / "car").mkdir(parents=True)
    code = evaluate.main(
        ["--model", str(model), "--images", str(tmp_path / "photos"), "--output", str(tmp_path)]
    )
    assert code == 1 and "unknown label 'car'" in capsys.readouterr().err


def test_staging_writes_fitted_train_images_and_full_size_held_out_photos(tmp_path):
    root = write_photos(tmp_path / "photos", {"bicycle": 10, "motorcycle": 8})
    staged = stage_photos(root, tmp_path / "data", other_hashes={})

    assert staged.counts == {"bicycle": 10, "motorcycle": 8}
    assert (staged.train, staged.held_out) == (14, 4)
    trained = sorted((tmp_path / "data" / "train").rglob("photo-*.png"))
    assert len(trained) == 14
    assert {Image.open(path).size for path in trained} == {(32, 32)}
    held = list(csv.DictReader((tmp_path / "data" / PHOTOS_TEST / "manifest.csv").open()))
    assert sorted(row["label"] for row in held) == ["bicycle"] * 2 + ["motorcycle"] * 2
    for row in held:
        original = root / row["label"] / row["file"].split("__", 1)[1]
        assert (tmp_path / "data" / PHOTOS_TEST / row["file"]).read_bytes() == (
            original.read_bytes()
        )
    assert not (tmp_path / "data" / "test").exists()  # with CIFAR, its test split stays alone


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda root: (root / "bicycle" / "notes.jpg").write_text("not a photo"),
            r"notes.jpg is not a decodable image",
        ),
        (
            lambda root: shutil.copy(
                root / "bicycle" / "bicycle_1.png", root / "bicycle" / "b.png"
            ),
            r"duplicated photo\(s\) \(same pixels decoded\), e.g. .*b.png, .*bicycle_1.png",
        ),
        (
            lambda root: [p.unlink() for p in list((root / "motorcycle").iterdir())[2:]],
            r"classes are unbalanced \{'bicycle': 6, 'motorcycle': 2\} \(ratio 3.00 > 1.5\)",
        ),
        (
            lambda root: shutil.rmtree(root / "motorcycle"),
            r"class motorcycle has fewer than 2 photos",
        ),
    ],
)
def test_staging_checks_name_what_is_wrong(tmp_path, damage, message):
    root = write_photos(tmp_path / "photos", {"bicycle": 6, "motorcycle": 6})
    damage(root)
    with pytest.raises(DataQualityError, match=message):
        stage_photos(root, tmp_path / "data", other_hashes={})


def test_a_photo_that_is_a_cifar_image_is_a_duplicate_across_data_sets(staged, tmp_path):
    root = write_photos(tmp_path / "photos", {"bicycle": 3, "motorcycle": 3})
    cifar = next((staged / "test" / "motorcycle").glob("*.png"))
    shutil.copy(cifar, root / "motorcycle" / "copied.png")
    with pytest.raises(DataQualityError, match=r"same pixels as the CIFAR image test/motorcycle/"):
        stage_photos(root, tmp_path / "data", other_hashes=_hashes(staged))


def _hashes(staged):
    from training.stage_photos import manifest_hashes

    return manifest_hashes(staged / "manifest.csv")


def test_unknown_label_folder_stops_training_with_its_name(make_archive, tmp_path, capsys):
    root = write_photos(tmp_path / "photos", {"bicycle": 3, "motorcycle": 3})
    (root / "Bicycles").mkdir()
    code = train.main(
        ["--local", "--archive", str(make_archive()), "--images", str(root)]
        + ["--output", str(tmp_path / "out"), "--epochs", "1"]
    )
    err = capsys.readouterr().err
    assert code == 1 and "--images: unknown label 'Bicycles'" in err and "Bicycles" in err


TINY = {"architecture": "cnn3", "width": 8, "batch-size": 8}


def test_training_with_photos_scores_both_test_splits(make_archive, tmp_path):
    root = write_photos(tmp_path / "photos", {"bicycle": 10, "motorcycle": 10}, seed=5)
    output = tmp_path / "out"
    record_path = train.train_local(
        make_archive(), output, epochs=1, hyperparameters=TINY, num_threads=1, images=root
    )
    record = json.loads(record_path.read_text())
    assert record["metrics"]["train_size"] + record["metrics"]["validation_size"] == 24 + 16
    assert record["evaluation"]["test_size"] == 12
    photos = record["evaluation"]["photos"]
    assert photos["test_size"] == 4 and set(photos["per_class"]) == {"bicycle", "motorcycle"}
    assert (output / photos["plots"]["misclassified"]).is_file()
    # The monitor compares traffic with the held-out photos: the baseline training wrote.
    baseline = json.loads((output / "drift-baseline.json").read_text())
    assert record["evaluation"]["baseline_images"] == PHOTOS_TEST
    assert len(baseline["brightness"]) == 4 and set(baseline["width"]) != {32}


def test_photos_alone_train_and_test_on_photos_only(tmp_path):
    root = write_photos(tmp_path / "photos", {"bicycle": 15, "motorcycle": 15}, seed=6)
    output = tmp_path / "out"
    with pytest.raises(StagingError, match="does not exist"):
        train.train_local(None, output, images=tmp_path / "missing")
    record = json.loads(
        train.train_local(
            None, output, epochs=1, hyperparameters=TINY, num_threads=1, images=root
        ).read_text()
    )
    data = output / "data"
    assert not (data / "manifest.csv").exists()  # no CIFAR staged, nothing downloaded
    assert record["metrics"]["train_size"] + record["metrics"]["validation_size"] == 24
    assert record["evaluation"]["test_size"] == record["evaluation"]["photos"]["test_size"] == 6
    assert all(p.name.startswith("photo-") for p in (data / "train").rglob("*.png"))


@mock_aws
def test_cloud_mode_stages_the_photos_to_s3_and_scores_them(
    make_archive, model_dir, tmp_path, capsys
):
    s3 = prepare_account(model_dir, tmp_path)
    session = boto3.Session(region_name="us-east-1")
    requests = capture_create_requests(session)
    root = write_photos(tmp_path / "photos", {"bicycle": 5, "motorcycle": 5})

    code = train.main(
        ["--archive", str(make_archive()), "--images", str(root)]
        + ["--output", str(tmp_path / "out"), *LAUNCH_ARGUMENTS],
        session=session,
    )

    assert code == 0, capsys.readouterr().err
    assert [c["ChannelName"] for c in requests[0]["InputDataConfig"]] == ["train", "test"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert sum(key.startswith("data/train/") for key in keys) == 24 + 8
    assert sum(key.startswith("data/train/bicycle/photo-") for key in keys) == 4
    assert sum(key.startswith("data/test/") for key in keys) == 12
    assert f"data/{PHOTOS_TEST}/manifest.csv" in keys
    record = json.loads((tmp_path / "out" / "model-record.json").read_text())
    assert record["evaluation"]["photos"]["test_size"] == 2


def test_help_of_both_commands_explains_the_photo_folders():
    import subprocess
    import sys

    for script in ("train.py", "evaluate.py"):
        completed = subprocess.run(
            [sys.executable, str(train.REPO_ROOT / "training" / script), "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert completed.returncode == 0, completed.stderr
        text = " ".join(completed.stdout.split())
        assert "--images" in text and "manifest.csv" in text and "<label>" in text
