"""Training entry point: runs inside the AWS PyTorch training container and as a local process.

In the container the hyperparameters arrive as ``--name value`` arguments and the folders
as ``SM_CHANNEL_TRAIN``, ``SM_CHANNEL_TEST``, ``SM_MODEL_DIR`` and ``SM_OUTPUT_DATA_DIR``.
The train channel holds ``{bicycle,motorcycle}/*.png``; a stratified validation split is
held out of it (one disjoint split per member of an ensemble) for early stopping and model
selection; the test channel (optional) gives the final score only. Metrics are printed as
``name=value`` pairs that the job's metric definitions parse. The model folder receives
``model.pth`` (a plain ``state_dict``), ``model-config.json``, ``photo-expert.pth`` (unless
``--photo-expert 0``), ``thumbnail-probe.pth`` (unless ``--thumbnail-probe 0``) and
``code/{inference,network,photo_expert,thumbnail_probe}.py``: the layout of ``model.tar.gz``.

The modules next to this file (``hyperparameters``, ``training_data``, ``augmentation``,
``fitting``, ``ensemble``, ``artifact``) are shipped with it and imported as top-level modules.
"""

# ruff: noqa: E402  (the environment is set before torch is imported)
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: 2-4x faster on 2 cores

import argparse
from dataclasses import fields
from pathlib import Path

from ensemble import RunPaths, train
from hyperparameters import Hyperparameters
from training_data import TrainingDataError

# What the callers of the entry point use (training/train.py, bench/, the tests).
__all__ = ["Hyperparameters", "RunPaths", "TrainingDataError", "parse_args", "train"]


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def add_hyperparameter_options(parser: argparse.ArgumentParser) -> None:
    """An option per field of ``Hyperparameters``, in their order; a flag (bool) takes 0 or 1."""
    for hyperparameter in fields(Hyperparameters):
        flag = "--" + hyperparameter.name.replace("_", "-")
        default, text = hyperparameter.default, hyperparameter.metadata.get("help")
        help_text = text and text.replace("%", "%%")  # argparse formats help strings with %
        if isinstance(default, bool):
            parser.add_argument(
                flag, type=int, choices=(0, 1), default=int(default), help=help_text
            )
        else:
            choices = hyperparameter.metadata.get("choices")
            parser.add_argument(
                flag, type=type(default), choices=choices, default=default, help=help_text
            )


def hyperparameters_from(args: argparse.Namespace) -> Hyperparameters:
    """The parsed options as ``Hyperparameters``, each value of its field's type."""
    return Hyperparameters(
        **{
            hyperparameter.name: type(hyperparameter.default)(getattr(args, hyperparameter.name))
            for hyperparameter in fields(Hyperparameters)
        }
    )


def parse_args(argv: list[str] | None = None) -> tuple[Hyperparameters, RunPaths, int | None]:
    parser = argparse.ArgumentParser(
        description="Train the bicycle/motorcycle classifier (SageMaker training entry point). "
        "Folders default to the SM_* variables the training container sets."
    )
    add_hyperparameter_options(parser)
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
    paths = RunPaths(**{path.name: getattr(args, path.name) for path in fields(RunPaths)})
    if paths.checkpoint_dir:
        paths.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    return hyperparameters_from(args), paths, args.num_threads


if __name__ == "__main__":
    hyperparameters, run_paths, threads = parse_args()
    train(hyperparameters, run_paths, threads)
