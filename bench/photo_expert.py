# ruff: noqa: E402  (the environment and sys.path are set before the imports they affect)
"""Benchmark: an ImageNet-pretrained network as a second expert for real photos.

    .venv/bin/python bench/photo_expert.py --model OUT [--model OUT2 ...] [--photos DIR]

OUT is a ``training/train.py --local`` output folder (``model.tar.gz``, ``metrics.json`` and
the staged ``data/train``). Through the artifact's own handlers, each image is scored by our
network alone, the photo expert alone (``photo_expert.py``: EfficientNet-Lite1's ImageNet head,
untrained, on the 240 px centre square), their sum (what was served before the expert answered
photos alone), and as served (the expert's where the gate opens on the image's detail,
elsewhere ours plus the thumbnail probe's vote when the artifact has one). On the dev set per
source, and on the artifact's own
validation images of the training split (never trained on) as 32x32 PNGs and as phone-size
JPEGs; the dev photos and the phone-size JPEGs also as the workflow sends them (the serialize
Lambda's JPEG of at most 384 px); and the served time with and without the expert, side by
side: the comparison docs/real-photos.md reports.
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
from PIL import Image
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from real_photos import phone_size_jpeg
from workflow_images import as_serialized

from training.evaluate import extract_artifact, load_inference_module
from training.evaluate_photos import CONTENT_TYPES
from training.model.photo_expert import DETAIL_GATE, EXPERT_SIZE, detail
from training.photos import labelled_photos

DEFAULT_PHOTOS = REPO_ROOT.parent / "shared" / "data" / "real-photos-dev"


def log_odds(probabilities: list[float]) -> float:
    p = min(max(probabilities[1], 1e-7), 1 - 1e-7)
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


def score(out: Path, photos_dir: Path, seed: int, seconds: dict) -> list[tuple]:
    """(set, source, label, ours, expert, served, detail) for every image, the three as
    motorcycle log-odds; the served time with and without the expert is added to ``seconds``."""
    folder = Path(tempfile.mkdtemp(prefix="bench-expert-"))
    inference = load_inference_module(extract_artifact(out / "model.tar.gz", folder) / "code")
    model = inference.model_fn(str(folder))
    if model.photo_expert is None:
        raise SystemExit(f"{out}'s artifact has no photo expert: train it with the default recipe")
    without = inference.Classifier(model.thumbnails, None)
    rows = []

    def add(part, source, label, body):
        with Image.open(io.BytesIO(body)) as image:  # the content type evaluate_photos sends
            content_type = CONTENT_TYPES.get(image.format or "", "application/x-image")
        start = time.perf_counter()
        ours = inference.predict_fn(inference.input_fn(body, content_type), without)
        middle = time.perf_counter()
        served = inference.predict_fn(inference.input_fn(body, content_type), model)
        seconds["without"] += middle - start
        seconds["served"] += time.perf_counter() - middle
        upright = inference.upright_rgb(inference.decode_image(body))
        square = inference.reduce_box(upright, inference.centre_square(*upright.size), EXPERT_SIZE)
        with torch.inference_mode():
            expert = float(model.photo_expert(inference.image_to_tensor(square))[0])
        row = (log_odds(ours), expert, log_odds(served), detail(square))
        rows.append((part, source, label, *row))

    for photo in tqdm(labelled_photos(photos_dir), desc="dev photos", unit="photo"):
        add("dev", photo.source, photo.label, photo.path.read_bytes())
        add("dev via workflow", "-", photo.label, as_serialized(photo.path.read_bytes())[0])
    rng = np.random.default_rng(seed)
    for label, png in tqdm(validation_pngs(out), desc="validation", unit="image"):
        add("validation 32x32", "-", label, png)
        phone_size = phone_size_jpeg(png, rng)
        add("validation phone-size", "-", label, phone_size)
        add("phone-size via workflow", "-", label, as_serialized(phone_size)[0])
    return rows


def report(name: str, rows: list[tuple]) -> None:
    combos = {
        "ours": lambda ours, expert, served: ours,
        "ImageNet head": lambda ours, expert, served: expert,
        "sum": lambda ours, expert, served: ours + expert,
        f"served (expert if detail > {DETAIL_GATE:g})": lambda ours, expert, served: served,
    }
    groups = defaultdict(list)
    for part, source, label, *values in rows:
        groups[part].append((label, *values))
        if part == "dev":
            groups[f"dev {source}"].append((label, *values))
    print(f"\n{name}")
    widths = {group: max(8, len(group) + 2) for group in groups}
    print(f"{'':30s}" + "".join(f"{group:>{width}s}" for group, width in widths.items()))
    print(f"{'(images)':30s}" + "".join(f"{len(groups[g]):>{w}d}" for g, w in widths.items()))
    for combo, decide in combos.items():
        cells = {
            group: np.mean([(decide(*row[1:4]) > 0) == (row[0] == 1) for row in items])
            for group, items in groups.items()
        }
        print(f"{combo:30s}" + "".join(f"{cells[g]:>{w}.3f}" for g, w in widths.items()))
    for part in ("dev", "dev via workflow", "validation 32x32", "validation phone-size"):
        values = np.array([row[4] for row in groups[part]])
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
    parser.add_argument("--seed", type=int, default=0, help="for the phone-size JPEGs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seconds = {"without": 0.0, "served": 0.0}
    for out in args.model:
        report(str(out), score(out, args.photos, args.seed, seconds))
    print(
        f"\nserved time, one thread, side by side (decode and fit included): with the expert "
        f"{seconds['served'] / seconds['without']:.1f}x without ({seconds['served']:.0f} s vs "
        f"{seconds['without']:.0f} s over the same images)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
