# ruff: noqa: E402  (the environment and sys.path are set before the imports they affect)
"""Benchmark: the model on real photos, side by side in one run.

    .venv/bin/python bench/real_photos.py [--model build/model/model.tar.gz]

1. The default recipe (CIFAR only; trained first unless ``--model`` names its artifact) on the
   real-photo dev set: accuracy overall, per class and per source.
2. Trained with ``--images`` on a stratified part of the dev set (``--images-fraction``):
   accuracy on the rest, per source, next to the default recipe's on the same rest.
3. The staged CIFAR test split as phone-size JPEGs (each image upscaled to 0.6-9 MP, sensor
   noise, quality 90) against the 32x32 PNGs, through the same handlers, for both models.

Every score goes through the artifact's own ``code/inference.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import csv
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from training.evaluate import extract_artifact, labelled_test_files, load_inference_module
from training.evaluate_photos import evaluate_photo_folder
from training.photos import MANIFEST_NAME, Photo, labelled_photos, stratified_split
from training.record import read_record
from training.train import train_local

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_ARCHIVE = SHARED_DATA / "cifar-100-python-bicycle-motorcycle.tar.gz"
DEFAULT_PHOTOS = SHARED_DATA / "real-photos-dev"
MEGAPIXELS = (0.6, 9.0)
NOISE_SIGMA = 4.0
JPEG_QUALITY = 90


def phone_size_jpeg(png: bytes, rng: np.random.Generator) -> bytes:
    """A 32x32 image as a phone would deliver it: upscaled (bicubic) to a random square of
    0.6-9 MP, with Gaussian sensor noise, JPEG-encoded."""
    side = int((rng.uniform(*MEGAPIXELS) * 1e6) ** 0.5)
    with Image.open(io.BytesIO(png)) as image:
        large = np.asarray(image.convert("RGB").resize((side, side), Image.Resampling.BICUBIC))
    noisy = large.astype(np.float32)
    noisy += rng.standard_normal(noisy.shape, dtype=np.float32) * NOISE_SIGMA
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=JPEG_QUALITY
    )
    return buffer.getvalue()


def phone_size_accuracy(models: dict[str, Path], test_dir: Path, seed: int) -> dict:
    """Accuracy of each model on the 32x32 test PNGs and on their phone-size JPEGs."""
    loaded = {}
    for name, model_tar in models.items():
        folder = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        inference = load_inference_module(extract_artifact(model_tar, folder) / "code")
        loaded[name] = (inference, inference.model_fn(str(folder)))
    right = {name: {"32x32": 0, "phone": 0} for name in models}
    files = labelled_test_files(test_dir)
    rng = np.random.default_rng(seed)
    for label, path in tqdm(files, desc="phone-size JPEGs", unit="image"):
        png = path.read_bytes()
        jpeg = phone_size_jpeg(png, rng)
        for name, (inference, model) in loaded.items():
            for kind, body, content_type in (
                ("32x32", png, "image/png"),
                ("phone", jpeg, "image/jpeg"),
            ):
                probabilities = inference.predict_fn(inference.input_fn(body, content_type), model)
                right[name][kind] += int(np.argmax(probabilities) == label)
    return {name: {k: v / len(files) for k, v in counts.items()} for name, counts in right.items()}


def link_photos(photos: list[Photo], root: Path, dest: Path) -> Path:
    """A photo folder of ``photos`` (symbolic links, same relative paths, a manifest)."""
    rows = []
    for photo in photos:
        relative = photo.path.relative_to(root)
        (dest / relative).parent.mkdir(parents=True, exist_ok=True)
        (dest / relative).symlink_to(photo.path.resolve())
        rows.append((relative.as_posix(), photo.class_name, photo.source))
    with (dest / MANIFEST_NAME).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("file", "label", "source"))
        writer.writerows(rows)
    return dest


def _scores(evaluation: dict) -> str:
    parts = [f"all {evaluation['accuracy']:.3f} ({evaluation['test_size']})"]
    parts += [f"{name} {block['accuracy']:.3f}" for name, block in evaluation["per_class"].items()]
    parts += [
        f"{source} {block['accuracy']:.3f} ({block['support']})"
        for source, block in evaluation["per_source"].items()
    ]
    return "  ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="real-photo dev set")
    parser.add_argument(
        "--model", type=Path, help="the default recipe's model.tar.gz (default: train it here)"
    )
    parser.add_argument(
        "--images-fraction",
        type=float,
        default=0.5,
        help="share of the dev set (stratified by class and source) given to --images",
    )
    parser.add_argument("--seed", type=int, default=0, help="training, split and noise seed")
    parser.add_argument("--num-threads", type=int, help="torch threads (default: all)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-photos-") as workdir:
        root = Path(workdir)
        default_model = args.model
        if default_model is None:
            record = train_local(
                args.archive, root / "default", seed=args.seed, num_threads=args.num_threads
            )
            default_model = Path(read_record(record)["model_data_url"])
        photos = labelled_photos(args.photos)
        rest, given = stratified_split(photos, args.images_fraction, args.seed)
        given_dir = link_photos(given, args.photos, root / "given")
        rest_dir = link_photos(rest, args.photos, root / "rest")
        record = train_local(
            args.archive,
            root / "images",
            seed=args.seed,
            num_threads=args.num_threads,
            images=given_dir,
        )
        images_model = Path(read_record(record)["model_data_url"])

        dev = evaluate_photo_folder(default_model, args.photos, root / "eval-dev")
        default_rest = evaluate_photo_folder(default_model, rest_dir, root / "eval-rest-default")
        images_rest = evaluate_photo_folder(images_model, rest_dir, root / "eval-rest-images")
        staged_test = root / "images" / "data" / "test"
        phone = phone_size_accuracy(
            {"default": default_model, "--images": images_model}, staged_test, args.seed
        )

    print()
    print(f"dev set, default recipe:             {_scores(dev)}")
    print(f"rest of the dev set, default recipe: {_scores(default_rest)}")
    print(f"rest of the dev set, --images {len(given)}:   {_scores(images_rest)}")
    print(
        f"  --images / default on the rest: "
        f"{images_rest['accuracy'] / default_rest['accuracy']:.4f}x"
    )
    for name, scores in phone.items():
        print(
            f"CIFAR test, {name:<9} 32x32 {scores['32x32']:.3f}  phone-size JPEG "
            f"{scores['phone']:.3f}  difference {scores['phone'] - scores['32x32']:+.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
