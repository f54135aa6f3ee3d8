"""Training entry point: runs inside the AWS PyTorch training container and as a local process.

In the container the hyperparameters arrive as ``--name value`` arguments and the folders
as ``SM_CHANNEL_TRAIN``, ``SM_CHANNEL_TEST``, ``SM_MODEL_DIR`` and ``SM_OUTPUT_DATA_DIR``.
The train channel holds ``{bicycle,motorcycle}/*.png``; a stratified validation split is
held out of it (one disjoint split per member of an ensemble) for early stopping and model
selection; the test channel (optional) gives the final score only. Metrics are printed as
``name=value`` pairs that the job's metric definitions parse. The model folder receives
``model.pth`` (a plain ``state_dict``), ``model-config.json`` and
``code/{inference,network}.py``: the layout of ``model.tar.gz``.
"""

# ruff: noqa: E402  (the environment is set before torch is imported)
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: 2-4x faster on 2 cores

import argparse
import copy
import json
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from inference import CONFIG_FILE, MODEL_FILE, ProbabilityModel, fit_to_input
from network import ARCHITECTURES, CLASS_NAMES, INPUT_SIZE, build_network
from PIL import Image
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

CODE_DIR = Path(__file__).resolve().parent
SHIPPED_MODULES = ("inference.py", "network.py")
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pt"
CROP_PADDING = 4


class TrainingDataError(Exception):
    """The training or test folder is missing, empty or lacks a class."""


@dataclass
class Hyperparameters:
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 0.002
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    architecture: str = "resnet9"
    width: int = 16
    validation_fraction: float = 0.1
    patience: int = 15
    ema_decay: float = 0.98
    cutout: int = 8
    trivial_augment: bool = True
    zoom_out: float = 0.0
    downscale_blur: float = 0.0
    members: int = 1
    seed: int = 0


@dataclass
class RunPaths:
    train_dir: Path
    model_dir: Path
    output_data_dir: Path
    test_dir: Path | None = None
    checkpoint_dir: Path | None = None


@dataclass
class TrainingState:
    """The progress of one ensemble member's training and model selection."""

    epoch: int = 0
    best_epoch: int = 0
    best_val_accuracy: float = 0.0
    best_val_loss: float = float("inf")
    lowest_val_loss: float = float("inf")
    epochs_without_improvement: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def selecting(self, hp: Hyperparameters) -> bool:
        return self.epoch < hp.epochs and self.epochs_without_improvement < hp.patience


def log_line(text: str) -> None:
    """A log line on stdout, flushed at once (CloudWatch and metric parsing see it live)."""
    tqdm.write(text, file=sys.stdout)
    sys.stdout.flush()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_generator(seed: int, member: int, epoch: int) -> torch.Generator:
    """The generator of one epoch, derived from (seed, member, epoch): a resumed run repeats it."""
    entropy = np.random.SeedSequence([seed, member, epoch])
    return torch.Generator().manual_seed(int(entropy.generate_state(1, dtype=np.uint64)[0] >> 1))


def load_image_folder(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images under ``root/<class>/*.png`` as uint8 NxHxWx3 and their class indices."""
    if not root.is_dir():
        raise TrainingDataError(f"data folder {root} does not exist")
    images, labels = [], []
    for index, name in enumerate(CLASS_NAMES):
        files = sorted((root / name).glob("*.png")) if (root / name).is_dir() else []
        if not files:
            raise TrainingDataError(f"{root / name} holds no PNG images")
        for path in files:
            with Image.open(path) as image:
                fitted = image if image.size == (INPUT_SIZE, INPUT_SIZE) else fit_to_input(image)
                images.append(np.asarray(fitted.convert("RGB"), dtype=np.uint8))
            labels.append(index)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def split_validation(
    labels: np.ndarray, fraction: float, seed: int, fold: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of indices into (train, validation); folds hold out disjoint sets."""
    rng = np.random.default_rng(seed)
    train_indices, val_indices = [], []
    for index in range(len(CLASS_NAMES)):
        members = rng.permutation(np.flatnonzero(labels == index))
        held_out = max(1, round(len(members) * fraction))
        start = fold * held_out
        if start + held_out > len(members):
            raise ValueError(
                f"validation fold {fold} of {held_out} images does not fit in "
                f"{len(members)} images of {CLASS_NAMES[index]}: lower --validation-fraction "
                "or --members"
            )
        val_indices.append(members[start : start + held_out])
        train_indices.append(np.concatenate([members[:start], members[start + held_out :]]))
    return np.sort(np.concatenate(train_indices)), np.sort(np.concatenate(val_indices))


def to_unit_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop after reflect padding and random horizontal flip, per image, in one gather."""
    count, _, size, _ = batch.shape
    padded = F.pad(batch, (CROP_PADDING,) * 4, mode="reflect")
    offsets = torch.randint(0, 2 * CROP_PADDING + 1, (count, 2), generator=generator)
    flips = torch.rand(count, generator=generator) < 0.5
    steps = torch.arange(size)
    rows = offsets[:, :1] + steps
    cols = offsets[:, 1:] + torch.where(flips[:, None], steps.flip(0), steps)
    crops = padded[torch.arange(count)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return crops.permute(0, 3, 1, 2).contiguous()


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``other`` + factor * (images - other), per image, clipped to [0, 1]."""
    return (other + factor.view(-1, 1, 1, 1) * (images - other)).clamp(0, 1)


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True).expand_as(images)


def _warp(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Affine warp per image (2x3 ``theta`` in normalized coordinates), grey outside."""
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images - 0.5, grid, align_corners=False) + 0.5


def _rotate(images: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    angle = strength * torch.pi / 6  # up to 30 degrees either way
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    return _warp(images, torch.stack([cos, -sin, zero, sin, cos, zero], 1).view(-1, 2, 3))


def _shear(images: torch.Tensor, strength: torch.Tensor, axis: int) -> torch.Tensor:
    one, zero, shear = torch.ones_like(strength), torch.zeros_like(strength), 0.3 * strength
    rows = [one, shear, zero, zero, one, zero] if axis == 0 else [one, zero, zero, shear, one, zero]
    return _warp(images, torch.stack(rows, 1).view(-1, 2, 3))


def _sharpness(images: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13
    smooth = F.conv2d(
        F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel.expand(3, 1, 3, 3), groups=3
    )
    return _blend(images, smooth, 1 + 0.9 * strength)


def _autocontrast(images: torch.Tensor) -> torch.Tensor:
    low = images.amin(dim=(2, 3), keepdim=True)
    high = images.amax(dim=(2, 3), keepdim=True)
    return torch.where(high > low, (images - low) / (high - low).clamp_min(1e-6), images)


# TrivialAugment's idea (Muller & Hutter, 2021) on tensors: each image gets one operation,
# drawn uniformly, at a uniformly drawn strength. ``strength`` is in [-1, 1].
AUGMENT_OPERATIONS: tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], ...] = (
    lambda x, s: x,
    lambda x, s: _blend(x, torch.zeros_like(x), 1 + 0.9 * s),  # brightness
    lambda x, s: _blend(x, x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x), 1 + 0.9 * s),
    lambda x, s: _blend(x, _grayscale(x), 1 + 0.9 * s),  # saturation
    _sharpness,
    _rotate,
    lambda x, s: _shear(x, s, 0),
    lambda x, s: _shear(x, s, 1),
    lambda x, s: torch.where(x > 1 - s.abs().view(-1, 1, 1, 1), 1 - x, x),  # solarize
    lambda x, s: (
        torch.floor(x * 2 ** (8 - (4 * s.abs()).round()).view(-1, 1, 1, 1))
        / 2 ** (8 - (4 * s.abs()).round()).view(-1, 1, 1, 1)
    ),  # posterize to 4-8 bits
    lambda x, s: _autocontrast(x),
)


def trivial_augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One operation of ``AUGMENT_OPERATIONS`` per image, at a random strength."""
    count = batch.shape[0]
    choice = torch.randint(0, len(AUGMENT_OPERATIONS), (count,), generator=generator)
    strength = torch.rand(count, generator=generator) * 2 - 1
    results = torch.stack([operation(batch, strength) for operation in AUGMENT_OPERATIONS])
    return results[choice, torch.arange(count)]


def photo_augment(
    batch: torch.Tensor, zoom_out: float, blur: float, generator: torch.Generator
) -> torch.Tensor:
    """Changes toward the look of photos fitted to 32 px: with probability ``zoom_out`` the
    subject shrunk to 60-100% of the frame (a random place, reflected surroundings); with
    probability ``blur`` the image reduced to 12-28 px and enlarged back."""
    count, _, size, _ = batch.shape
    scale = torch.where(
        torch.rand(count, generator=generator) < zoom_out,
        1 / (0.6 + 0.4 * torch.rand(count, generator=generator)),
        torch.ones(count),
    )
    shift = (scale[:, None] - 1) * (torch.rand(count, 2, generator=generator) * 2 - 1)
    zero = torch.zeros(count)
    theta = torch.stack([scale, zero, shift[:, 0], zero, scale, shift[:, 1]], 1).view(-1, 2, 3)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    batch = F.grid_sample(batch, grid, padding_mode="reflection", align_corners=False)
    chosen = torch.rand(count, generator=generator) < blur
    if chosen.any():
        side = int(torch.randint(12, size - 3, (1,), generator=generator))
        small = F.interpolate(batch[chosen], size=(side, side), mode="area")
        batch[chosen] = F.interpolate(small, size=(size, size), mode="bilinear")
    return batch


def cut_out(batch: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one ``size`` x ``size`` square per normalized image, centred anywhere (Cutout)."""
    if size <= 0:
        return batch
    count, _, height, width = batch.shape
    centres = torch.rand(count, 2, generator=generator) * torch.tensor([height, width])
    rows = torch.arange(height)[None, :] - centres[:, :1] + size / 2
    cols = torch.arange(width)[None, :] - centres[:, 1:] + size / 2
    inside_rows = (rows >= 0) & (rows < size)
    inside_cols = (cols >= 0) & (cols < size)
    hole = inside_rows[:, :, None] & inside_cols[:, None, :]
    return batch.masked_fill(hole[:, None], 0.0)


def evaluate_logits(
    model: ProbabilityModel, images: torch.Tensor, labels: torch.Tensor, smoothing: float
) -> tuple[float, float, float]:
    """(loss, accuracy, standard error of the loss) of the plain network on a labelled set.

    No flip averaging: the loss of what is trained. The standard error is that of the mean of
    the per-image losses, which model selection uses as its tolerance.
    """
    model.eval()
    with torch.inference_mode():
        logits = model.network((images - model.mean) / model.std)
        losses = F.cross_entropy(logits, labels, label_smoothing=smoothing, reduction="none")
        accuracy = (logits.argmax(1) == labels).float().mean().item()
        error = (losses.std() / len(losses) ** 0.5).item() if len(losses) > 1 else 0.0
    return losses.mean().item(), accuracy, error


def probability_accuracy(model: ProbabilityModel, images: torch.Tensor, labels: torch.Tensor):
    model.eval()
    with torch.inference_mode():
        return (model(images).argmax(1) == labels).float().mean().item()


def warmed_up_ema(decay: float):
    """An EMA update whose decay ramps up as min(decay, (1 + n) / (10 + n)) over n updates.

    A fixed decay keeps much of the random initial weights for the first hundred steps, so a
    short run (a couple of epochs) would give a useless model; the ramp forgets them quickly.
    """

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged) -> None:
        step = int(num_averaged)
        step_decay = min(decay, (1 + step) / (10 + step))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1 - step_decay)
        else:
            for average, value in zip(averaged, current, strict=True):
                average.copy_(average * step_decay + value * (1 - step_decay))

    return update


class Fit:
    """One network trained on one labelled set: weights, their moving average, optimizer, schedule.

    Validation, selection and the artifact use the exponential moving average of the weights
    (BatchNorm statistics included): steadier than the raw weights on a thousand images.
    """

    def __init__(
        self,
        hp: Hyperparameters,
        member: int,
        images: torch.Tensor,
        labels: torch.Tensor,
        normalization: tuple[list[float], list[float]],
    ) -> None:
        self.hp, self.member, self.images, self.labels = hp, member, images, labels
        torch.manual_seed(int(np.random.SeedSequence([hp.seed, member]).generate_state(1)[0]))
        self.network = build_network(hp.architecture, hp.width)
        self.ema = AveragedModel(
            self.network, multi_avg_fn=warmed_up_ema(hp.ema_decay), use_buffers=True
        )
        self.model = ProbabilityModel(self.ema.module, *normalization, flip_average=True)
        self.optimizer = torch.optim.AdamW(
            self.network.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay
        )
        steps_per_epoch = -(-len(images) // hp.batch_size)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=hp.learning_rate, total_steps=hp.epochs * steps_per_epoch
        )

    def run_epoch(self, epoch: int) -> float:
        """One pass over the set in random order; returns the mean training loss."""
        hp = self.hp
        generator = epoch_generator(hp.seed, self.member, epoch)
        torch.manual_seed(generator.initial_seed())  # dropout draws from the global generator
        self.network.train()
        order = torch.randperm(len(self.images), generator=generator)
        total_loss = 0.0
        for start in range(0, len(order), hp.batch_size):
            batch = order[start : start + hp.batch_size]
            images = augment(self.images[batch], generator)
            if hp.trivial_augment:
                images = trivial_augment(images, generator)
            if hp.zoom_out or hp.downscale_blur:
                images = photo_augment(images, hp.zoom_out, hp.downscale_blur, generator)
            inputs = (images - self.model.mean) / self.model.std
            inputs = cut_out(inputs, hp.cutout, generator)
            loss = F.cross_entropy(
                self.network(inputs), self.labels[batch], label_smoothing=hp.label_smoothing
            )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.ema.update_parameters(self.network)
            total_loss += loss.item() * len(batch)
        return total_loss / len(self.images)

    def state_dict(self) -> dict:
        return {
            "network": self.network.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def load_state_dict(self, saved: dict) -> None:
        self.network.load_state_dict(saved["network"])
        self.ema.load_state_dict(saved["ema"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])


def _save_checkpoint(
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


def combine_members(member_states: list[dict]) -> dict:
    """The ensemble's state dict from its members' (a lone member is saved as a plain network)."""
    if len(member_states) == 1:
        return member_states[0]
    return {
        f"members.{index}.{name}": value
        for index, state in enumerate(member_states)
        for name, value in state.items()
    }


def _write_model_dir(model_dir: Path, network_state: dict, config: dict) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(network_state, model_dir / MODEL_FILE)
    (model_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    code_dir = model_dir / "code"
    code_dir.mkdir(exist_ok=True)
    for module in SHIPPED_MODULES:
        shutil.copy2(CODE_DIR / module, code_dir / module)


def select_member(
    fit: Fit,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    state: TrainingState,
    best_state: dict,
    save: Callable[[dict], None],
) -> dict:
    """Train one member and return the weights (of the moving average) it selects.

    The selected epoch is the latest whose validation loss is within one standard error of the
    lowest so far: on a hundred images, a lower loss by less than that is noise, and the later
    epoch has had more of the schedule's annealing. Training stops after ``patience`` epochs
    that are all clearly worse than the lowest, or at the end of the schedule.
    """
    hp, member = fit.hp, fit.member
    with tqdm(
        total=hp.epochs, initial=state.epoch, desc=f"member {member + 1}/{hp.members}", unit="epoch"
    ) as progress:
        while state.selecting(hp):
            epoch = state.epoch + 1
            train_loss = fit.run_epoch(epoch)
            val_loss, val_accuracy, val_error = evaluate_logits(
                fit.model, val_x, val_y, hp.label_smoothing
            )
            state.epoch = epoch
            state.history.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "val_accuracy": val_accuracy,
                }
            )
            state.lowest_val_loss = min(state.lowest_val_loss, val_loss)
            if val_loss <= state.lowest_val_loss + val_error:
                state.best_epoch, state.best_val_accuracy, state.best_val_loss = (
                    epoch,
                    val_accuracy,
                    val_loss,
                )
                state.epochs_without_improvement = 0
                best_state = copy.deepcopy(fit.ema.module.state_dict())
            else:
                state.epochs_without_improvement += 1
            log_line(
                f"member={member} epoch={epoch} train_loss={train_loss:.4f} "
                f"val_loss={val_loss:.4f} val_accuracy={val_accuracy:.4f}"
            )
            save(best_state)
            progress.update()
            if not state.selecting(hp) and state.epoch < hp.epochs:
                log_line(
                    f"member {member}: early stop after epoch {epoch}, validation loss "
                    f"clearly above its lowest for {hp.patience} epochs"
                )
    return best_state


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
    torch.set_num_threads(num_threads or os.cpu_count() or 1)
    seed_everything(hp.seed)
    started = time.perf_counter()

    images, labels = load_image_folder(paths.train_dir)
    folds = [
        split_validation(labels, hp.validation_fraction, hp.seed, m) for m in range(hp.members)
    ]
    all_x = to_unit_tensor(images)
    normalization = (all_x.mean(dim=(0, 2, 3)).tolist(), all_x.std(dim=(0, 2, 3)).tolist())
    states = [TrainingState() for _ in range(hp.members)]
    completed: list[dict] = []
    saved = None
    checkpoint = paths.checkpoint_dir / CHECKPOINT_FILE if paths.checkpoint_dir else None
    if checkpoint and checkpoint.exists():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        completed = saved["completed"]
        states = [TrainingState(**state) for state in saved["states"]]
        print(
            f"resumed from {checkpoint} after epoch {states[len(completed)].epoch} "
            f"of member {len(completed)}",
            flush=True,
        )

    for member in range(len(completed), hp.members):
        train_idx, val_idx = folds[member]
        fit = Fit(hp, member, all_x[train_idx], torch.from_numpy(labels[train_idx]), normalization)
        best_state = copy.deepcopy(fit.ema.module.state_dict())
        if saved is not None and states[member].epoch:
            fit.load_state_dict(saved["fit"])
            best_state = saved["selected"]

        def save(selected: dict, fit: Fit = fit) -> None:
            if checkpoint:
                _save_checkpoint(checkpoint, fit, completed, selected, states)

        val_x, val_y = all_x[val_idx], torch.from_numpy(labels[val_idx])
        completed.append(select_member(fit, val_x, val_y, states[member], best_state, save))

    ensemble = build_network(hp.architecture, hp.width, members=hp.members)
    model = ProbabilityModel(ensemble, *normalization, flip_average=True)
    network_state = combine_members(completed)
    ensemble.load_state_dict(network_state)
    metrics: dict = {
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
    if paths.test_dir is not None:
        test_images, test_labels = load_image_folder(paths.test_dir)
        metrics["test_accuracy"] = probability_accuracy(
            model, to_unit_tensor(test_images), torch.from_numpy(test_labels)
        )
        metrics["test_size"] = len(test_labels)
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    print(
        f"final members={hp.members} val_accuracy={metrics['val_accuracy']:.4f}"
        + (f" test_accuracy={metrics['test_accuracy']:.4f}" if "test_accuracy" in metrics else "")
        + f" train_seconds={metrics['train_seconds']}",
        flush=True,
    )
    config = {
        "architecture": hp.architecture,
        "width": hp.width,
        "members": hp.members,
        "class_names": list(CLASS_NAMES),
        "input_size": INPUT_SIZE,
        "mean": normalization[0],
        "std": normalization[1],
        "flip_average": True,
    }
    _write_model_dir(paths.model_dir, network_state, config)
    paths.output_data_dir.mkdir(parents=True, exist_ok=True)
    (paths.output_data_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    return metrics


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def parse_args(argv: list[str] | None = None) -> tuple[Hyperparameters, RunPaths, int | None]:
    defaults = Hyperparameters()
    parser = argparse.ArgumentParser(
        description="Train the bicycle/motorcycle classifier (SageMaker training entry point). "
        "Folders default to the SM_* variables the training container sets."
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=defaults.learning_rate,
        help="peak learning rate of the one-cycle schedule",
    )
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing)
    parser.add_argument("--architecture", choices=ARCHITECTURES, default=defaults.architecture)
    parser.add_argument(
        "--width", type=int, default=defaults.width, help="channels of the first convolution"
    )
    parser.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction)
    parser.add_argument(
        "--patience",
        type=int,
        default=defaults.patience,
        help="stop after this many epochs whose validation loss is clearly (by more than its "
        "standard error) above the lowest",
    )
    parser.add_argument(
        "--ema-decay",
        type=float,
        default=defaults.ema_decay,
        help="per-step decay of the weight average that is validated and saved",
    )
    parser.add_argument(
        "--cutout",
        type=int,
        default=defaults.cutout,
        help="side in pixels of the square zeroed in each training image (0: off)",
    )
    parser.add_argument(
        "--trivial-augment",
        type=int,
        choices=(0, 1),
        default=int(defaults.trivial_augment),
        help="1: one random photometric or geometric change per training image (TrivialAugment)",
    )
    parser.add_argument(
        "--zoom-out",
        type=float,
        default=defaults.zoom_out,
        help="share of training images whose subject is shrunk to 60-100%% of the frame",
    )
    parser.add_argument(
        "--downscale-blur",
        type=float,
        default=defaults.downscale_blur,
        help="share of training images reduced to 12-28 px and enlarged back",
    )
    parser.add_argument(
        "--members",
        type=int,
        default=defaults.members,
        help="networks in the ensemble, each validated on its own held-out fold",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--num-threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--train-dir", type=Path, default=_env_path("SM_CHANNEL_TRAIN"))
    parser.add_argument("--test-dir", type=Path, default=_env_path("SM_CHANNEL_TEST"))
    parser.add_argument("--model-dir", type=Path, default=_env_path("SM_MODEL_DIR"))
    parser.add_argument("--output-data-dir", type=Path, default=_env_path("SM_OUTPUT_DATA_DIR"))
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        help="save and resume from a checkpoint here (managed spot training)",
    )
    args = parser.parse_args(argv)
    for name in ("train_dir", "model_dir", "output_data_dir"):
        if getattr(args, name) is None:
            parser.error(f"--{name.replace('_', '-')} is required outside the SageMaker container")
    hp = Hyperparameters(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        architecture=args.architecture,
        width=args.width,
        validation_fraction=args.validation_fraction,
        patience=args.patience,
        ema_decay=args.ema_decay,
        cutout=args.cutout,
        trivial_augment=bool(args.trivial_augment),
        zoom_out=args.zoom_out,
        downscale_blur=args.downscale_blur,
        members=args.members,
        seed=args.seed,
    )
    paths = RunPaths(
        train_dir=args.train_dir,
        model_dir=args.model_dir,
        output_data_dir=args.output_data_dir,
        test_dir=args.test_dir,
        checkpoint_dir=args.checkpoint_dir,
    )
    if paths.checkpoint_dir:
        paths.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    return hp, paths, args.num_threads


if __name__ == "__main__":
    hyperparameters, run_paths, threads = parse_args()
    train(hyperparameters, run_paths, threads)
