"""The training images: class folders of PNGs loaded as arrays, split into train and validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from inference import fit_to_input
from network import CLASS_NAMES, INPUT_SIZE
from PIL import Image


class TrainingDataError(Exception):
    """The training or test folder is missing, empty or lacks a class."""


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
    """uint8 NxHxWx3 arrays as a float Nx3xHxW tensor in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)


def channel_statistics(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of Nx3xHxW images: the input normalization."""
    return images.mean(dim=(0, 2, 3)).tolist(), images.std(dim=(0, 2, 3)).tolist()
