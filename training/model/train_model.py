"""Training entry point: runs inside the AWS PyTorch training container and as a local process.

In the container the hyperparameters arrive as ``--name value`` arguments and the folders
as ``SM_CHANNEL_TRAIN``, ``SM_CHANNEL_TEST``, ``SM_MODEL_DIR`` and ``SM_OUTPUT_DATA_DIR``.
The train channel holds ``{bicycle,motorcycle}/*.png``; a stratified validation split is
held out of it for early stopping and model selection; the test channel (optional) gives
the final score only. Metrics are printed as ``name=value`` pairs that the job's metric
definitions parse. The model folder receives ``model.pth`` (a plain ``state_dict``),
``model-config.json`` and ``code/{inference,network}.py``: the layout of ``model.tar.gz``.
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
import sys
import time
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
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 0.002
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    architecture: str = "resnet9"
    width: int = 16
    validation_fraction: float = 0.1
    patience: int = 15
    ema_decay: float = 0.98
    cutout: int = 0
    mixup_alpha: float = 0.0
    refit: bool = False
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
    epoch: int = 0
    best_epoch: int = 0
    best_val_accuracy: float = 0.0
    best_val_loss: float = float("inf")
    epochs_without_improvement: int = 0
    refit_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    refit_history: list[dict[str, float]] = field(default_factory=list)

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


def epoch_randomness(
    seed: int, phase: int, epoch: int
) -> tuple[torch.Generator, np.random.Generator]:
    """Generators for one epoch, derived from (seed, phase, epoch): a resumed run repeats them."""
    entropy = np.random.SeedSequence([seed, phase, epoch])
    torch_seed = int(entropy.generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator().manual_seed(torch_seed), np.random.default_rng(entropy)


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
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of indices into (train, validation)."""
    rng = np.random.default_rng(seed)
    train_indices, val_indices = [], []
    for index in range(len(CLASS_NAMES)):
        members = rng.permutation(np.flatnonzero(labels == index))
        held_out = max(1, round(len(members) * fraction))
        val_indices.append(members[:held_out])
        train_indices.append(members[held_out:])
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


def mixed_loss(
    network: torch.nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    hp: Hyperparameters,
    mix_rng: np.random.Generator,
    generator: torch.Generator,
) -> torch.Tensor:
    """Cross-entropy; with ``hp.mixup_alpha`` > 0, on a mixup of the batch with a shuffle of it."""
    if hp.mixup_alpha <= 0:
        return F.cross_entropy(network(inputs), labels, label_smoothing=hp.label_smoothing)
    share = float(mix_rng.beta(hp.mixup_alpha, hp.mixup_alpha))
    partners = torch.randperm(len(inputs), generator=generator)
    logits = network(share * inputs + (1 - share) * inputs[partners])
    return share * F.cross_entropy(logits, labels, label_smoothing=hp.label_smoothing) + (
        1 - share
    ) * F.cross_entropy(logits, labels[partners], label_smoothing=hp.label_smoothing)


def evaluate_logits(
    model: ProbabilityModel, images: torch.Tensor, labels: torch.Tensor, smoothing: float
) -> tuple[float, float]:
    """(loss, accuracy) of the plain network (no flip averaging) on a labelled set."""
    model.eval()
    with torch.inference_mode():
        logits = model.network((images - model.mean) / model.std)
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing).item()
        accuracy = (logits.argmax(1) == labels).float().mean().item()
    return loss, accuracy


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

    def __init__(self, hp: Hyperparameters, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.hp, self.images, self.labels = hp, images, labels
        self.network = build_network(hp.architecture, hp.width)
        self.ema = AveragedModel(
            self.network, multi_avg_fn=warmed_up_ema(hp.ema_decay), use_buffers=True
        )
        self.mean = images.mean(dim=(0, 2, 3)).tolist()
        self.std = images.std(dim=(0, 2, 3)).tolist()
        self.model = ProbabilityModel(self.ema.module, self.mean, self.std, flip_average=True)
        self.optimizer = torch.optim.AdamW(
            self.network.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay
        )
        steps_per_epoch = -(-len(images) // hp.batch_size)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=hp.learning_rate, total_steps=hp.epochs * steps_per_epoch
        )

    def run_epoch(self, phase: int, epoch: int) -> float:
        """One pass over the set in random order; returns the mean training loss."""
        hp = self.hp
        generator, mix_rng = epoch_randomness(hp.seed, phase, epoch)
        torch.manual_seed(generator.initial_seed())  # dropout draws from the global generator
        self.network.train()
        order = torch.randperm(len(self.images), generator=generator)
        total_loss = 0.0
        for start in range(0, len(order), hp.batch_size):
            batch = order[start : start + hp.batch_size]
            inputs = (augment(self.images[batch], generator) - self.model.mean) / self.model.std
            inputs = cut_out(inputs, hp.cutout, generator)
            loss = mixed_loss(self.network, inputs, self.labels[batch], hp, mix_rng, generator)
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
    path: Path, selection: Fit, refit: Fit | None, best_state: dict, state: TrainingState
) -> None:
    payload = {
        "selection": selection.state_dict(),
        "refit": refit.state_dict() if refit else None,
        "best_state": best_state,
        "training_state": asdict(state),
    }
    temporary = path.with_suffix(".tmp")
    torch.save(payload, temporary)
    temporary.replace(path)


def _write_model_dir(model_dir: Path, network_state: dict, config: dict) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(network_state, model_dir / MODEL_FILE)
    (model_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    code_dir = model_dir / "code"
    code_dir.mkdir(exist_ok=True)
    for module in SHIPPED_MODULES:
        shutil.copy2(CODE_DIR / module, code_dir / module)


def train(hp: Hyperparameters, paths: RunPaths, num_threads: int | None = None) -> dict:
    """Train, select the best epoch on validation, optionally refit, score on test, write all.

    Selection trains on the training split minus a stratified validation set and keeps the
    epoch with the lowest validation loss (or stops early). With ``hp.refit`` a new network
    then trains on the whole training split with the same schedule up to that epoch: what was
    validated, on 10% more images. The test split only gives the final score.
    """
    if hp.architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {hp.architecture!r}; choose one of {ARCHITECTURES}")
    torch.set_num_threads(num_threads or os.cpu_count() or 1)
    seed_everything(hp.seed)
    started = time.perf_counter()

    images, labels = load_image_folder(paths.train_dir)
    train_idx, val_idx = split_validation(labels, hp.validation_fraction, hp.seed)
    val_x, val_y = to_unit_tensor(images[val_idx]), torch.from_numpy(labels[val_idx])
    selection = Fit(hp, to_unit_tensor(images[train_idx]), torch.from_numpy(labels[train_idx]))
    refit = Fit(hp, to_unit_tensor(images), torch.from_numpy(labels)) if hp.refit else None
    state = TrainingState()
    best_state = copy.deepcopy(selection.ema.module.state_dict())
    checkpoint = paths.checkpoint_dir / CHECKPOINT_FILE if paths.checkpoint_dir else None
    if checkpoint and checkpoint.exists():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        selection.load_state_dict(saved["selection"])
        if refit and saved["refit"]:
            refit.load_state_dict(saved["refit"])
        best_state = saved["best_state"]
        state = TrainingState(**saved["training_state"])
        print(
            f"resumed from {checkpoint} after epoch {state.epoch}"
            + (f" and refit epoch {state.refit_epoch}" if state.refit_epoch else ""),
            flush=True,
        )

    def save() -> None:
        if checkpoint:
            _save_checkpoint(checkpoint, selection, refit, best_state, state)

    with tqdm(total=hp.epochs, initial=state.epoch, desc="epochs", unit="epoch") as progress:
        while state.selecting(hp):
            epoch = state.epoch + 1
            train_loss = selection.run_epoch(0, epoch)
            val_loss, val_accuracy = evaluate_logits(
                selection.model, val_x, val_y, hp.label_smoothing
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
            if val_loss < state.best_val_loss:  # loss: steadier than 100-image accuracy
                state.best_epoch, state.best_val_accuracy, state.best_val_loss = (
                    epoch,
                    val_accuracy,
                    val_loss,
                )
                state.epochs_without_improvement = 0
                best_state = copy.deepcopy(selection.ema.module.state_dict())
            else:
                state.epochs_without_improvement += 1
            log_line(
                f"epoch={epoch} train_loss={train_loss:.4f} val_loss={val_loss:.4f} "
                f"val_accuracy={val_accuracy:.4f}"
            )
            save()
            progress.update()
            if not state.selecting(hp) and state.epoch < hp.epochs:
                log_line(
                    f"early stop after epoch {epoch}: no better validation for {hp.patience} epochs"
                )

    final = selection
    if refit:
        final = refit
        with tqdm(
            total=state.best_epoch, initial=state.refit_epoch, desc="refit", unit="epoch"
        ) as progress:
            while state.refit_epoch < state.best_epoch:
                epoch = state.refit_epoch + 1
                train_loss = refit.run_epoch(1, epoch)
                state.refit_epoch = epoch
                state.refit_history.append({"epoch": epoch, "train_loss": train_loss})
                log_line(f"refit_epoch={epoch} train_loss={train_loss:.4f}")
                save()
                progress.update()
        best_state = refit.ema.module.state_dict()

    final.model.network.load_state_dict(best_state)
    metrics: dict = {
        "best_epoch": state.best_epoch,
        "epochs_run": state.epoch,
        "refit_epochs": state.refit_epoch,
        "val_accuracy": state.best_val_accuracy,
        "val_loss": state.best_val_loss,
        "train_loss": (state.refit_history or state.history)[-1]["train_loss"],
        "train_size": len(selection.images),
        "validation_size": len(val_x),
        "final_train_size": len(final.images),
        "parameters": sum(p.numel() for p in final.network.parameters()),
        "hyperparameters": asdict(hp),
        "history": state.history,
        "refit_history": state.refit_history,
    }
    if paths.test_dir is not None:
        test_images, test_labels = load_image_folder(paths.test_dir)
        metrics["test_accuracy"] = probability_accuracy(
            final.model, to_unit_tensor(test_images), torch.from_numpy(test_labels)
        )
        metrics["test_size"] = len(test_labels)
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    print(
        f"final best_epoch={state.best_epoch} val_accuracy={state.best_val_accuracy:.4f}"
        + (f" test_accuracy={metrics['test_accuracy']:.4f}" if "test_accuracy" in metrics else "")
        + f" train_seconds={metrics['train_seconds']}",
        flush=True,
    )
    config = {
        "architecture": hp.architecture,
        "width": hp.width,
        "class_names": list(CLASS_NAMES),
        "input_size": INPUT_SIZE,
        "mean": final.mean,
        "std": final.std,
        "flip_average": True,
    }
    _write_model_dir(paths.model_dir, best_state, config)
    paths.output_data_dir.mkdir(parents=True, exist_ok=True)
    (paths.output_data_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    return metrics


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _boolean(text: str) -> bool:
    """A hyperparameter flag as SageMaker passes it: ``true``/``false`` (any case), 1 or 0."""
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a boolean: use true or false")
    return value in ("true", "1")


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
        help="stop after this many epochs without a better validation score",
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
        "--mixup-alpha",
        type=float,
        default=defaults.mixup_alpha,
        help="Beta(alpha, alpha) share of mixup between training images (0: off)",
    )
    parser.add_argument(
        "--refit",
        type=_boolean,
        default=defaults.refit,
        help="true: after selection, retrain on train+validation up to the selected epoch",
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
        mixup_alpha=args.mixup_alpha,
        refit=args.refit,
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
