"""The recipe's pieces: augmentation, Cutout, mixup, refitting, and resuming in every phase."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import train_model

SHORT_RUN = ["--epochs", "2", "--architecture", "cnn3", "--width", "8", "--batch-size", "8"]


@pytest.fixture
def staged(make_archive, tmp_path):
    from training.stage_data import stage_local

    return stage_local(tmp_path / "data", make_archive()).root


def run(staged, out, *extra: str) -> dict:
    hp, paths, threads = train_model.parse_args(
        [
            *SHORT_RUN,
            "--num-threads",
            "1",
            "--train-dir",
            str(staged / "train"),
            "--test-dir",
            str(staged / "test"),
            "--model-dir",
            str(out / "model"),
            "--output-data-dir",
            str(out / "output"),
            *extra,
        ]
    )
    return train_model.train(hp, paths, threads)


def saved_weights(out) -> dict[str, torch.Tensor]:
    return torch.load(out / "model" / "model.pth", weights_only=True)


def test_augment_takes_a_padded_window_mirrored_or_not():
    images = torch.rand(16, 3, 32, 32)
    augmented = train_model.augment(images, torch.Generator().manual_seed(3))

    padded = F.pad(images, (4, 4, 4, 4), mode="reflect")
    mirrored = 0
    for image, result in zip(padded, augmented, strict=True):
        windows = [
            image[:, top : top + 32, left : left + 32] for top in range(9) for left in range(9)
        ]
        if any(torch.equal(result, window) for window in windows):
            continue
        assert any(torch.equal(result, torch.flip(window, dims=[2])) for window in windows)
        mirrored += 1
    assert 0 < mirrored < 16


def test_cut_out_zeroes_one_square_per_image_and_nothing_when_off():
    images = torch.ones(64, 3, 32, 32)
    holed = train_model.cut_out(images, 8, torch.Generator().manual_seed(0))

    zeroed = (holed == 0).all(dim=1)
    assert torch.equal(zeroed, (holed == 0).any(dim=1))  # the same pixels in every channel
    counts = zeroed.sum(dim=(1, 2))
    assert counts.max() == 64 and counts.min() > 0  # clipped at the border, never gone
    for mask in zeroed:
        rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
        assert mask.sum() == len(rows) * len(cols)  # one rectangle
    assert torch.equal(train_model.cut_out(images, 0, torch.Generator()), images)


def test_mixed_loss_blends_the_losses_of_both_label_sets():
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    inputs = torch.randn(8, 3, 4, 4)
    labels = torch.tensor([0, 1] * 4)
    plain = train_model.Hyperparameters(mixup_alpha=0.0, label_smoothing=0.0)
    expected = F.cross_entropy(network(inputs), labels)
    loss = train_model.mixed_loss(
        network, inputs, labels, plain, np.random.default_rng(0), torch.Generator()
    )
    assert torch.allclose(loss, expected)

    mixing = train_model.Hyperparameters(mixup_alpha=0.4, label_smoothing=0.0)
    share = float(np.random.default_rng(5).beta(0.4, 0.4))
    partners = torch.randperm(8, generator=torch.Generator().manual_seed(9))
    logits = network(share * inputs + (1 - share) * inputs[partners])
    blended = share * F.cross_entropy(logits, labels) + (1 - share) * F.cross_entropy(
        logits, labels[partners]
    )
    loss = train_model.mixed_loss(
        network,
        inputs,
        labels,
        mixing,
        np.random.default_rng(5),
        torch.Generator().manual_seed(9),
    )
    assert torch.allclose(loss, blended) and not torch.allclose(loss, expected)


def test_refit_trains_on_train_and_validation_up_to_the_selected_epoch(staged, tmp_path, capsys):
    metrics = run(staged, tmp_path, "--refit", "true")

    assert metrics["final_train_size"] == metrics["train_size"] + metrics["validation_size"]
    assert metrics["refit_epochs"] == metrics["best_epoch"] >= 1
    assert [row["epoch"] for row in metrics["refit_history"]] == list(
        range(1, metrics["best_epoch"] + 1)
    )
    logged = capsys.readouterr().out
    assert f"refit_epoch={metrics['best_epoch']} train_loss=" in logged

    plain = run(staged, tmp_path / "plain", "--refit", "false")
    assert plain["refit_epochs"] == 0 and plain["final_train_size"] == plain["train_size"]
    refit_weights, plain_weights = saved_weights(tmp_path), saved_weights(tmp_path / "plain")
    assert any(not torch.equal(refit_weights[k], plain_weights[k]) for k in plain_weights)


def test_a_run_interrupted_during_refit_resumes_there_and_ends_the_same(
    staged, tmp_path, monkeypatch, capsys
):
    uninterrupted = run(staged, tmp_path / "whole", "--refit", "true")
    checkpoints = tmp_path / "checkpoints"
    original_run_epoch = train_model.Fit.run_epoch

    def spot_interruption(fit, phase, epoch):
        if phase == 1:
            raise KeyboardInterrupt("spot capacity reclaimed")
        return original_run_epoch(fit, phase, epoch)

    monkeypatch.setattr(train_model.Fit, "run_epoch", spot_interruption)
    with pytest.raises(KeyboardInterrupt):
        run(staged, tmp_path / "resumed", "--refit", "true", "--checkpoint-dir", str(checkpoints))
    monkeypatch.setattr(train_model.Fit, "run_epoch", original_run_epoch)
    capsys.readouterr()

    resumed = run(
        staged, tmp_path / "resumed", "--refit", "true", "--checkpoint-dir", str(checkpoints)
    )
    logged = capsys.readouterr().out
    assert "resumed from" in logged and "after epoch 2" in logged
    assert "\nepoch=" not in "\n" + logged  # no selection epoch trained again
    assert resumed["history"] == uninterrupted["history"]
    assert resumed["refit_history"] == uninterrupted["refit_history"]
    whole, again = saved_weights(tmp_path / "whole"), saved_weights(tmp_path / "resumed")
    assert all(torch.equal(whole[k], again[k]) for k in whole)


def test_an_early_stopped_run_does_not_train_on_when_resumed(staged, tmp_path, monkeypatch, capsys):
    losses = iter([0.5, 0.6, 0.7, 0.8])
    monkeypatch.setattr(train_model, "evaluate_logits", lambda *args: (next(losses), 0.5))
    checkpoints = ["--checkpoint-dir", str(tmp_path / "checkpoints")]
    stopped = run(staged, tmp_path, "--epochs", "4", "--patience", "1", *checkpoints)
    assert stopped["epochs_run"] == 2 and stopped["best_epoch"] == 1
    assert "early stop after epoch 2" in capsys.readouterr().out

    again = run(staged, tmp_path, "--epochs", "4", "--patience", "1", *checkpoints)
    assert again["epochs_run"] == 2 and again["history"] == stopped["history"]


@pytest.mark.parametrize(("text", "value"), [("true", True), ("False", False), ("1", True)])
def test_boolean_hyperparameters_read_as_sagemaker_passes_them(text, value):
    assert train_model._boolean(text) is value


def test_a_boolean_hyperparameter_that_is_not_one_names_the_fix():
    with pytest.raises(argparse.ArgumentTypeError, match="'yes' is not a boolean: use true"):
        train_model._boolean("yes")
