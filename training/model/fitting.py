"""The fit loop of one ensemble member: epochs of augmented minibatches, the moving average
of the weights, validation after each epoch and the selection of the epoch to keep."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from augmentation import augment, cut_out, photo_augment, trivial_augment
from hyperparameters import Hyperparameters
from inference import ProbabilityModel
from network import build_network
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm


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


def epoch_generator(seed: int, member: int, epoch: int) -> torch.Generator:
    """The generator of one epoch, derived from (seed, member, epoch): a resumed run repeats it."""
    entropy = np.random.SeedSequence([seed, member, epoch])
    return torch.Generator().manual_seed(int(entropy.generate_state(1, dtype=np.uint64)[0] >> 1))


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
