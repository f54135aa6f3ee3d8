"""The training recipe: every hyperparameter with its default and its command-line help.

Each field is the entry point's option ``--<name with dashes>`` (a SageMaker hyperparameter
of that name); its metadata gives the option's ``help`` and ``choices``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from network import ARCHITECTURES


def _option(default: Any, help: str | None = None, choices: tuple | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class Hyperparameters:
    """The recipe of one training run (of every member of the ensemble)."""

    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = _option(0.002, "peak learning rate of the one-cycle schedule")
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    architecture: str = _option("resnet9", choices=ARCHITECTURES)
    width: int = _option(16, "channels of the first convolution")
    validation_fraction: float = 0.1
    patience: int = _option(
        15,
        "stop after this many epochs whose validation loss is clearly (by more than its "
        "standard error) above the lowest",
    )
    ema_decay: float = _option(
        0.98, "per-step decay of the weight average that is validated and saved"
    )
    cutout: int = _option(8, "side in pixels of the square zeroed in each training image (0: off)")
    trivial_augment: bool = _option(
        True, "1: one random photometric or geometric change per training image (TrivialAugment)"
    )
    zoom_out: float = _option(
        0.0, "share of training images whose subject is shrunk to 60-100% of the frame"
    )
    downscale_blur: float = _option(
        0.0, "share of training images reduced to 12-28 px and enlarged back"
    )
    members: int = _option(1, "networks in the ensemble, each validated on its own held-out fold")
    photo_expert: bool = _option(
        True,
        "1: photos with more detail than a thumbnail are answered by EfficientNet-Lite1's "
        "ImageNet head (untrained)",
    )
    thumbnail_probe: bool = _option(
        True,
        "1: a logistic regression fitted on the photo expert's features of the training "
        "thumbnails adds its vote on thumbnails (needs photo-expert=1)",
    )
    seed: int = 0
