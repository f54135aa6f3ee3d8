"""The recipe: augmentation, Cutout, TrivialAugment, epoch selection, the ensemble, resuming."""

from __future__ import annotations

import re

import augmentation
import fitting
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import training_data
from entry_point_runs import run_entry_point


def run(staged, out, *extra: str) -> dict:
    """Two epochs, so that selection has a choice; ``extra`` options win."""
    return run_entry_point(staged, out, "--epochs", "2", *extra)


def saved_weights(out) -> dict[str, torch.Tensor]:
    return torch.load(out / "model" / "model.pth", weights_only=True)


def test_augment_takes_a_padded_window_mirrored_or_not():
    images = torch.rand(16, 3, 32, 32)
    augmented = augmentation.augment(images, torch.Generator().manual_seed(3))

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
    holed = augmentation.cut_out(images, 8, torch.Generator().manual_seed(0))

    zeroed = (holed == 0).all(dim=1)
    assert torch.equal(zeroed, (holed == 0).any(dim=1))  # the same pixels in every channel
    counts = zeroed.sum(dim=(1, 2))
    assert counts.max() == 64 and counts.min() > 0  # clipped at the border, never gone
    for mask in zeroed:
        rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
        assert mask.sum() == len(rows) * len(cols)  # one rectangle
    assert torch.equal(augmentation.cut_out(images, 0, torch.Generator()), images)


def test_trivial_augment_gives_each_image_one_operation_of_its_own():
    images = torch.rand(48, 3, 32, 32)
    augmented = augmentation.trivial_augment(images, torch.Generator().manual_seed(1))

    replay = torch.Generator().manual_seed(1)
    operations = augmentation.AUGMENT_OPERATIONS
    choice = torch.randint(0, len(operations), (48,), generator=replay)
    strength = torch.rand(48, generator=replay) * 2 - 1
    assert len(set(choice.tolist())) > len(operations) // 2
    for index in range(48):  # the same as the operation on that image alone: no batch statistic
        alone = operations[choice[index]](images[index : index + 1], strength[index : index + 1])
        assert torch.allclose(augmented[index : index + 1], alone, atol=1e-6)
    assert augmented.min() >= 0 and augmented.max() <= 1


@pytest.mark.parametrize("index", range(9))
def test_augment_operations_change_nothing_at_zero_strength(index):
    images = torch.rand(4, 3, 32, 32)
    unchanged = augmentation.AUGMENT_OPERATIONS[index](images, torch.zeros(4))
    assert torch.allclose(unchanged, images, atol=1e-5)


def test_members_hold_out_disjoint_stratified_validation_folds():
    labels = np.repeat([0, 1], 50)
    held_out = []
    for fold in range(3):
        train_idx, val_idx = training_data.split_validation(labels, 0.1, seed=4, fold=fold)
        assert sorted([*train_idx, *val_idx]) == list(range(100))
        assert np.bincount(labels[val_idx]).tolist() == [5, 5]
        held_out.append(set(val_idx.tolist()))
    assert not (held_out[0] & held_out[1] or held_out[0] & held_out[2] or held_out[1] & held_out[2])
    with pytest.raises(ValueError, match="lower --validation-fraction or --members"):
        training_data.split_validation(labels, 0.3, seed=4, fold=3)


def test_the_artifact_averages_the_members_each_selected_on_its_own_fold(staged, tmp_path):
    import inference

    metrics = run(staged, tmp_path, "--members", "2")

    assert metrics["members"] == 2 and len(metrics["best_epochs"]) == 2
    assert [len(history) for history in metrics["history"]] == metrics["epochs_run"] == [2, 2]
    assert metrics["train_size"] + metrics["validation_size"] == 24
    model = inference.model_fn(str(tmp_path / "model")).thumbnails
    members = model.network.members
    assert len(members) == 2
    assert any(
        not torch.equal(first, second)
        for first, second in zip(
            members[0].state_dict().values(), members[1].state_dict().values(), strict=True
        )
    )
    images = torch.rand(5, 3, 32, 32)
    normalized = (images - model.mean) / model.std
    with torch.inference_mode():
        mean_logits = (members[0](normalized) + members[1](normalized)) / 2
        assert torch.allclose(model.network(normalized), mean_logits)


def test_a_lone_member_is_saved_as_a_plain_network(staged, tmp_path):
    run(staged, tmp_path, "--members", "1")
    assert not any(name.startswith("members.") for name in saved_weights(tmp_path))


def test_a_run_interrupted_in_a_later_member_resumes_there_and_ends_the_same(
    staged, tmp_path, monkeypatch, capsys
):
    uninterrupted = run(staged, tmp_path / "whole", "--members", "2")
    checkpoints = ["--checkpoint-dir", str(tmp_path / "checkpoints")]
    original_run_epoch = fitting.Fit.run_epoch

    def spot_interruption(fit, epoch):
        if (fit.member, epoch) == (1, 2):
            raise KeyboardInterrupt("spot capacity reclaimed")
        return original_run_epoch(fit, epoch)

    monkeypatch.setattr(fitting.Fit, "run_epoch", spot_interruption)
    with pytest.raises(KeyboardInterrupt):
        run(staged, tmp_path / "resumed", "--members", "2", *checkpoints)
    monkeypatch.setattr(fitting.Fit, "run_epoch", original_run_epoch)
    capsys.readouterr()

    resumed = run(staged, tmp_path / "resumed", "--members", "2", *checkpoints)
    logged = capsys.readouterr().out
    assert "resumed from" in logged and "after epoch 1 of member 1" in logged
    assert re.findall(r"^member=(\d) epoch=(\d)", logged, re.MULTILINE) == [("1", "2")]
    assert resumed["history"] == uninterrupted["history"]
    whole, again = saved_weights(tmp_path / "whole"), saved_weights(tmp_path / "resumed")
    assert all(torch.equal(whole[k], again[k]) for k in whole)


def test_an_early_stopped_run_does_not_train_on_when_resumed(staged, tmp_path, monkeypatch, capsys):
    losses = iter([0.5, 0.6, 0.7, 0.8])
    monkeypatch.setattr(fitting, "evaluate_logits", lambda *args: (next(losses), 0.5, 0.01))
    options = ["--epochs", "4", "--patience", "1", "--members", "1"]
    checkpoints = ["--checkpoint-dir", str(tmp_path / "checkpoints")]
    stopped = run(staged, tmp_path, *options, *checkpoints)
    assert stopped["epochs_run"] == [2] and stopped["best_epochs"] == [1]
    assert "early stop after epoch 2" in capsys.readouterr().out

    again = run(staged, tmp_path, *options, *checkpoints)
    assert again["epochs_run"] == [2] and again["history"] == stopped["history"]


def test_selection_takes_the_latest_epoch_within_one_standard_error_of_the_lowest(
    staged, tmp_path, monkeypatch
):
    outcomes = iter([(0.50, 0.8, 0.05), (0.54, 0.7, 0.05), (0.70, 0.9, 0.05)])
    monkeypatch.setattr(fitting, "evaluate_logits", lambda *args: next(outcomes))
    metrics = run(staged, tmp_path, "--epochs", "3", "--members", "1")
    assert metrics["best_epochs"] == [2]  # 0.54 is within 0.05 of 0.50; 0.70 is not
    assert (metrics["val_loss"], metrics["val_accuracy"]) == (0.54, 0.7)


def test_an_ensemble_of_no_members_is_refused(staged, tmp_path):
    with pytest.raises(ValueError, match="members=0: an ensemble needs at least 1 member"):
        run(staged, tmp_path, "--members", "0")


def test_photo_augment_shrinks_the_subject_and_blurs_only_when_asked():
    images = torch.rand(32, 3, 32, 32)
    untouched = augmentation.photo_augment(images.clone(), 0.0, 0.0, torch.Generator())
    assert torch.allclose(untouched, images, atol=1e-6)

    centre = torch.zeros(1, 3, 32, 32)
    centre[..., 8:24, 8:24] = 1.0  # a bright 16x16 subject on black
    zoomed = augmentation.photo_augment(
        centre.repeat(16, 1, 1, 1), 1.0, 0.0, torch.Generator().manual_seed(1)
    )
    bright = (zoomed > 0.5).float().sum(dim=(1, 2, 3)) / 3
    assert (bright <= 256).all() and (bright >= 0.3 * 256).all()  # 60-100% of the side
    assert bright.mean() < 0.8 * 256

    blurred = augmentation.photo_augment(images.clone(), 0.0, 1.0, torch.Generator().manual_seed(2))
    neighbour_gap = (blurred[..., 1:] - blurred[..., :-1]).abs().mean()
    assert neighbour_gap < 0.5 * (images[..., 1:] - images[..., :-1]).abs().mean()
