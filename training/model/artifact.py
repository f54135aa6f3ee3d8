"""The model folder in the layout of ``model.tar.gz``: weights, configuration and ``code/``.

``code/`` holds the modules the inference container imports; the configuration holds what
``inference.model_fn`` rebuilds the network and its input normalization from.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from inference import CONFIG_FILE, MODEL_FILE
from network import CLASS_NAMES, INPUT_SIZE, build_network
from torch import nn

if TYPE_CHECKING:
    from hyperparameters import Hyperparameters

CODE_DIR = Path(__file__).resolve().parent
SHIPPED_MODULES = ("inference.py", "network.py")
NETWORK_HYPERPARAMETERS = ("architecture", "width", "members")


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
    }


def write_model_dir(model_dir: Path, network_state: dict, config: dict) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(network_state, model_dir / MODEL_FILE)
    (model_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    code_dir = model_dir / "code"
    code_dir.mkdir(exist_ok=True)
    for module in SHIPPED_MODULES:
        shutil.copy2(CODE_DIR / module, code_dir / module)
