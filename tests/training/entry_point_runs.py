"""Short in-process runs of the training entry point, shared by the training tests."""

from __future__ import annotations

from pathlib import Path


def run_entry_point(staged: Path, out: Path, *extra: str) -> dict:
    """The entry point, in-process, for one epoch of a tiny network; ``extra`` options win."""
    import train_model

    hp, paths, threads = train_model.parse_args(
        ["--epochs", "1", "--architecture", "cnn3", "--width", "8", "--batch-size", "8"]
        + ["--num-threads", "1", "--train-dir", str(staged / "train")]
        + ["--test-dir", str(staged / "test"), "--model-dir", str(out / "model")]
        + ["--output-data-dir", str(out / "output"), *extra]
    )
    return train_model.train(hp, paths, threads)
