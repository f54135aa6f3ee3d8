"""The training run: the members trained one after another (resumable from a spot checkpoint),
combined into the ensemble, the thumbnail probe fitted, the served model scored on the test
split, written as model folder and metrics."""

from __future__ import annotations

import copy
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from artifact import (
    build_ensemble,
    combine_members,
    model_config,
    photo_expert_weights,
    write_model_dir,
)
from fitting import Fit, TrainingState, select_member
from hyperparameters import Hyperparameters
from inference import Classifier, ProbabilityModel
from network import ARCHITECTURES
from photo_expert import PhotoExpert
from thumbnail_probe import ThumbnailProbe, fit_probe
from torch import nn
from training_data import channel_statistics, load_image_folder, split_validation, to_unit_tensor

METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class RunPaths:
    train_dir: Path
    model_dir: Path
    output_data_dir: Path
    test_dir: Path | None = None
    checkpoint_dir: Path | None = None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_checkpoint(
    path: Path, fit: Fit, completed: list[dict], selected: dict, states: list[TrainingState]
) -> None:
    """The member in training and its selected weights so far, the selected weights of the
    members done, and every member's progress."""
    payload = {
        "fit": fit.state_dict(),
        "completed": completed,
        "selected": selected,
        "states": [asdict(state) for state in states],
    }
    temporary = path.with_suffix(".tmp")
    torch.save(payload, temporary)
    temporary.replace(path)


def resume(
    checkpoint: Path | None, members: int
) -> tuple[list[dict], list[TrainingState], dict | None]:
    """The selected weights of the members done, every member's progress, and the checkpoint
    they come from: nothing done and no checkpoint when there is none to resume from."""
    if checkpoint is None or not checkpoint.exists():
        return [], [TrainingState() for _ in range(members)], None
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    completed = saved["completed"]
    states = [TrainingState(**state) for state in saved["states"]]
    print(
        f"resumed from {checkpoint} after epoch {states[len(completed)].epoch} "
        f"of member {len(completed)}",
        flush=True,
    )
    return completed, states, saved


def train_members(
    hp: Hyperparameters,
    images: torch.Tensor,
    labels: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    normalization: tuple[list[float], list[float]],
    checkpoint: Path | None,
) -> tuple[list[dict], list[TrainingState]]:
    """Each member trained on its fold's training part and selected on its validation part,
    from where the checkpoint left off; their selected weights and their progress."""
    completed, states, saved = resume(checkpoint, hp.members)
    for member in range(len(completed), hp.members):
        train_idx, val_idx = folds[member]
        fit = Fit(hp, member, images[train_idx], torch.from_numpy(labels[train_idx]), normalization)
        best_state = copy.deepcopy(fit.ema.module.state_dict())
        if saved is not None and states[member].epoch:
            fit.load_state_dict(saved["fit"])
            best_state = saved["selected"]

        def save(selected: dict, fit: Fit = fit) -> None:
            if checkpoint:
                save_checkpoint(checkpoint, fit, completed, selected, states)

        val_x, val_y = images[val_idx], torch.from_numpy(labels[val_idx])
        completed.append(select_member(fit, val_x, val_y, states[member], best_state, save))
    return completed, states


FEATURE_BATCH = 10  # images per forward pass of the expert: larger batches were no faster


def in_batches(function: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor):
    """``function`` of ``FEATURE_BATCH`` images at a time, its outputs concatenated."""
    with torch.inference_mode():
        return torch.cat(
            [
                function(images[start : start + FEATURE_BATCH])
                for start in range(0, len(images), FEATURE_BATCH)
            ]
        )


def fit_thumbnail_probe(
    expert: PhotoExpert, thumbnails: torch.Tensor, labels: np.ndarray
) -> ThumbnailProbe:
    """The probe fitted on the expert's features of the thumbnails enlarged, as served."""
    features = in_batches(expert.thumbnail_features, thumbnails)
    return fit_probe(features, torch.from_numpy(labels))


def served_accuracy(model: Classifier, thumbnails: torch.Tensor, labels: np.ndarray) -> float:
    """Top-class accuracy of the served model on thumbnails (the probe's vote included)."""
    model.eval()
    predictions = in_batches(model.thumbnail_probabilities, thumbnails).argmax(1)
    return (predictions == torch.from_numpy(labels)).float().mean().item()


def selection_metrics(
    hp: Hyperparameters,
    states: list[TrainingState],
    folds: list[tuple[np.ndarray, np.ndarray]],
    ensemble: nn.Module,
) -> dict:
    """The members' selected epochs and validation scores (averaged), and the run's sizes."""
    return {
        "members": hp.members,
        "val_accuracy": statistics.fmean(state.best_val_accuracy for state in states),
        "val_loss": statistics.fmean(state.best_val_loss for state in states),
        "train_loss": statistics.fmean(state.history[-1]["train_loss"] for state in states),
        "best_epochs": [state.best_epoch for state in states],
        "epochs_run": [state.epoch for state in states],
        "train_size": len(folds[0][0]),
        "validation_size": len(folds[0][1]),
        "parameters": sum(p.numel() for p in ensemble.parameters()),
        "hyperparameters": asdict(hp),
        "history": [state.history for state in states],
    }


def train(hp: Hyperparameters, paths: RunPaths, num_threads: int | None = None) -> dict:
    """Train the ensemble, member by member; score it on test; write model and metrics.

    Each member holds out its own stratified validation fold (disjoint from the others'), so
    together they learn from every training image while each one's epoch is selected on images
    it never trained on. The artifact averages the members' logits. The test split only gives
    the final score.
    """
    if hp.architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {hp.architecture!r}; choose one of {ARCHITECTURES}")
    if hp.members < 1:
        raise ValueError(f"members={hp.members}: an ensemble needs at least 1 member")
    if hp.thumbnail_probe and not hp.photo_expert:
        raise ValueError(
            "thumbnail-probe=1 reads the photo expert's features: train with photo-expert=1, "
            "or with --hyperparameter thumbnail-probe=0 too"
        )
    if hp.photo_expert:
        photo_expert_weights()  # before training, not after it: say what is missing now
    torch.set_num_threads(num_threads or os.cpu_count() or 1)
    seed_everything(hp.seed)
    started = time.perf_counter()

    images, labels = load_image_folder(paths.train_dir)
    folds = [
        split_validation(labels, hp.validation_fraction, hp.seed, m) for m in range(hp.members)
    ]
    all_x = to_unit_tensor(images)
    normalization = channel_statistics(all_x)
    checkpoint = paths.checkpoint_dir / CHECKPOINT_FILE if paths.checkpoint_dir else None
    completed, states = train_members(hp, all_x, labels, folds, normalization, checkpoint)

    ensemble = build_ensemble(hp)
    network_state = combine_members(completed)
    ensemble.load_state_dict(network_state)
    metrics = selection_metrics(hp, states, folds, ensemble)
    expert = PhotoExpert(photo_expert_weights()) if hp.photo_expert else None
    train_idx, val_idx = folds[0]
    probe = None
    if hp.thumbnail_probe:
        probe = fit_thumbnail_probe(expert, all_x[train_idx], labels[train_idx])
    model = Classifier(ProbabilityModel(ensemble, *normalization), expert, probe)
    if probe is not None and hp.members == 1:  # other members trained on fold 0's validation
        metrics["val_accuracy_with_probe"] = served_accuracy(model, all_x[val_idx], labels[val_idx])
    if paths.test_dir is not None:
        test_images, test_labels = load_image_folder(paths.test_dir)
        metrics["test_accuracy"] = served_accuracy(model, to_unit_tensor(test_images), test_labels)
        metrics["test_size"] = len(test_labels)
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    print(
        f"final members={hp.members} val_accuracy={metrics['val_accuracy']:.4f}"
        + (
            f" val_accuracy_with_probe={metrics['val_accuracy_with_probe']:.4f}"
            if "val_accuracy_with_probe" in metrics
            else ""
        )
        + (f" test_accuracy={metrics['test_accuracy']:.4f}" if "test_accuracy" in metrics else "")
        + f" train_seconds={metrics['train_seconds']}",
        flush=True,
    )
    probe_state = None if probe is None else probe.state_dict()
    write_model_dir(paths.model_dir, network_state, model_config(hp, normalization), probe_state)
    paths.output_data_dir.mkdir(parents=True, exist_ok=True)
    (paths.output_data_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    return metrics
