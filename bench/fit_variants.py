# ruff: noqa: E402  (the environment and sys.path are set before the imports they affect)
"""Benchmark: ways to fit a real photo to the 32x32 input, one artifact, side by side.

    .venv/bin/python bench/fit_variants.py --model DIR/model.tar.gz [--photos DIR]

For each photo of the dev set, the artifact's network scores the photo fitted in each way:
the geometry for non-square photos (centre crop as today, a 90% crop, at most 4:3, squash,
pad with the border colour or white) with today's reduction, and the reduction (today's: the
artifact's own JPEG draft and bicubic ``reduce_box``; a naive nearest-neighbour resize of the
full decode; box, bilinear (the reduction before), Lanczos) with the centre crop. Prints
accuracy overall, per class and per source for each: the comparison docs/real-photos.md
reports.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import io
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from training.evaluate import extract_artifact, load_inference_module
from training.photos import CLASS_NAMES, labelled_photos

DEFAULT_PHOTOS = REPO_ROOT.parent / "shared" / "data" / "real-photos-dev"
R = Image.Resampling
REDUCTIONS = {"naive": R.NEAREST, "box": R.BOX, "bilinear": R.BILINEAR, "lanczos": R.LANCZOS}
VARIANTS = [(g, "today") for g in ("crop", "crop90", "4:3", "squash", "pad-border", "pad-white")]
VARIANTS += [("crop", r) for r in ("naive", "box", "bilinear", "lanczos")]


def frame(image: Image.Image, geometry: str) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The image (padded when asked) and the box of it that becomes the input."""
    width, height = image.size
    short, long = min(width, height), max(width, height)
    if geometry in ("crop", "crop90"):
        side = short if geometry == "crop" else int(0.9 * short)
        left, top = (width - side) // 2, (height - side) // 2
        return image, (left, top, left + side, top + side)
    if geometry == "4:3":
        keep = min(long, int(short * 4 / 3))
        if width >= height:
            return image, ((width - keep) // 2, 0, (width - keep) // 2 + keep, height)
        return image, (0, (height - keep) // 2, width, (height - keep) // 2 + keep)
    if geometry == "squash":
        return image, (0, 0, width, height)
    pixels = np.asarray(image)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]).mean(0)
    colour = (255, 255, 255) if geometry == "pad-white" else tuple(int(c) for c in border)
    canvas = Image.new("RGB", (long, long), colour)
    canvas.paste(image, ((long - width) // 2, (long - height) // 2))
    return canvas, (0, 0, long, long)


def fit(body: bytes, geometry: str, reduction: str, inference: ModuleType) -> Image.Image:
    """The photo fitted to 32x32 in ``geometry``; "today" reduces it as the artifact's own
    ``decode_image`` (JPEG draft) and ``reduce_box`` do, the others from the full decode."""
    if reduction == "today":
        image, box = frame(inference.upright_rgb(inference.decode_image(body)), geometry)
        return inference.reduce_box(image, box)
    image, box = frame(inference.upright_rgb(Image.open(io.BytesIO(body))), geometry)
    return image.resize((32, 32), REDUCTIONS[reduction], box=box)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="model.tar.gz")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="labelled photos")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-fit-") as workdir:
        model_dir = extract_artifact(args.model, Path(workdir))
        inference = load_inference_module(model_dir / "code")
        model = inference.model_fn(str(model_dir)).thumbnails  # our network, at 32x32
    if not hasattr(inference, "reduce_box"):
        parser.error(f"{args.model}'s code/inference.py predates reduce_box: train it again")
    photos = labelled_photos(args.photos)
    right: dict[tuple[str, str], dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for photo in tqdm(photos, desc="fit variants", unit="photo"):
        body = photo.path.read_bytes()
        for variant in VARIANTS:
            with torch.inference_mode():
                tensor = inference.image_to_tensor(fit(body, *variant, inference))
                correct = bool(model(tensor)[0].argmax() == photo.label)
            for group in ("all", photo.class_name, photo.source):
                right[variant][group].append(correct)
    sources = sorted({photo.source for photo in photos})
    for variant in VARIANTS:
        scores = right[variant]
        groups = ["all", *CLASS_NAMES, *sources]
        text = "  ".join(f"{group} {np.mean(scores[group]):.3f}" for group in groups)
        print(f"{variant[0]:>10} {variant[1]:>8}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
