"""Score a ``model.tar.gz`` on labelled real photos through its own inference handlers.

Each photo's file bytes go to the artifact's ``code/inference.py`` (``input_fn`` ->
``predict_fn`` -> ``output_fn``) with the content type of its format, so the large-photo path
the endpoint serves is the one measured. The result is the evaluation block of
``training/evaluate.py`` (accuracy, per class, threshold sweep, baseline) plus the accuracy
per source, the coverage and accuracy above the confidence threshold, the misclassified
photos, and a contact sheet PNG of them.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image, ImageOps, ImageStat  # noqa: E402
from tqdm import tqdm  # noqa: E402

from training.evaluate import (  # noqa: E402
    CLASS_NAMES,
    DEFAULT_MIN_COVERAGE,
    DEFAULT_TARGET_ACCURACY,
    Scored,
    extract_artifact,
    load_inference_module,
    summarize,
)
from training.photos import Photo, labelled_photos  # noqa: E402

CONTACT_SHEET = "misclassified_photos.png"
DEFAULT_THRESHOLD = 0.75  # the workflow's confidence_threshold in cdk.json
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}
SHEET_COLUMNS = 6
THUMBNAIL_SIDE = 160


def photo_figures(path: Path) -> tuple[str, int, int, float]:
    """Content type, width, height and brightness (mean RGB value, 0-255, as the drift
    monitor measures it) of a photo; the brightness from a reduced copy of large ones."""
    with Image.open(path) as image:
        content_type = CONTENT_TYPES.get(image.format or "", "application/x-image")
        width, height = image.size
        image.draft("RGB", (512, 512))
        image.thumbnail((512, 512))
        band_means = ImageStat.Stat(image.convert("RGB")).mean
    return content_type, width, height, sum(band_means) / len(band_means)


def score_photos(model_dir: Path, photos: list[Photo]) -> list[Scored]:
    """Scores of every photo, in order, through the artifact's handlers."""
    inference = load_inference_module(model_dir / "code")
    model = inference.model_fn(str(model_dir))
    scored = []
    for photo in tqdm(photos, desc="evaluate photos", unit="photo"):
        content_type, width, height, brightness = photo_figures(photo.path)
        data = inference.input_fn(photo.path.read_bytes(), content_type)
        response = inference.output_fn(inference.predict_fn(data, model), "application/json")
        probabilities = tuple(json.loads(response))
        scored.append(Scored(photo.label, probabilities, brightness, width, height))
    return scored


def _accuracy_block(items: list[Scored]) -> dict:
    right = sum(item.predicted == item.label for item in items)
    return {"accuracy": right / len(items), "support": len(items)}


def summarize_photos(
    photos: list[Photo],
    scored: list[Scored],
    root: Path,
    threshold: float = DEFAULT_THRESHOLD,
    target_accuracy: float = DEFAULT_TARGET_ACCURACY,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> dict:
    """The evaluation block of real photos (no plots): ``summarize``'s, per source and class,
    coverage and accuracy at ``threshold``, and the misclassified photos."""
    evaluation = summarize(scored, target_accuracy, min_coverage)
    by_class: dict[str, list[Scored]] = defaultdict(list)
    by_source: dict[str, list[Scored]] = defaultdict(list)
    for photo, item in zip(photos, scored, strict=True):
        by_class[photo.class_name].append(item)
        by_source[photo.source].append(item)
    for name, items in by_class.items():
        evaluation["per_class"][name]["accuracy"] = _accuracy_block(items)["accuracy"]
    evaluation["per_source"] = {
        source: _accuracy_block(items) for source, items in sorted(by_source.items())
    }
    passing = [item for item in scored if item.confidence >= threshold]
    evaluation["threshold"] = threshold
    evaluation["coverage"] = len(passing) / len(scored)
    evaluation["accuracy_above_threshold"] = (
        _accuracy_block(passing)["accuracy"] if passing else None
    )
    evaluation["misclassified"] = [
        {
            "file": photo.path.relative_to(root).as_posix(),
            "source": photo.source,
            "truth": photo.class_name,
            "predicted": CLASS_NAMES[item.predicted],
            "confidence": round(item.confidence, 4),
        }
        for photo, item in zip(photos, scored, strict=True)
        if item.predicted != item.label
    ]
    return evaluation


def contact_sheet(photos: list[Photo], scored: list[Scored], path: Path) -> int:
    """A grid of the misclassified photos (thumbnail, truth, prediction, confidence), most
    confident mistakes first; returns how many it shows (a sheet that says none when none)."""
    wrong = sorted(
        (pair for pair in zip(photos, scored, strict=True) if pair[1].predicted != pair[0].label),
        key=lambda pair: -pair[1].confidence,
    )
    columns = min(SHEET_COLUMNS, max(1, len(wrong)))
    rows = max(1, math.ceil(len(wrong) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.5 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    if not wrong:
        axes[0, 0].text(0.5, 0.5, "no misclassified photos", ha="center", va="center")
    for axis, (photo, item) in zip(axes.flat, wrong, strict=False):
        with Image.open(photo.path) as image:
            image.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            thumbnail = ImageOps.exif_transpose(image).convert("RGB")
            thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        axis.imshow(thumbnail)
        axis.set_title(
            f"{photo.path.name[:22]}\ntrue {photo.class_name}\n"
            f"said {CLASS_NAMES[item.predicted]} {item.confidence:.2f}",
            fontsize=7,
            color="tab:red",
        )
    figure.suptitle(f"Misclassified photos: {len(wrong)} of {len(scored)}")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return len(wrong)


def evaluate_photo_folder(
    model_tar: Path,
    images_dir: Path,
    output: Path,
    threshold: float = DEFAULT_THRESHOLD,
    photos: list[Photo] | None = None,
) -> dict:
    """Evaluate ``model_tar`` on the photos of ``images_dir`` (or the given subset of them);
    write the contact sheet to ``output``."""
    photos = photos if photos is not None else labelled_photos(images_dir)
    with tempfile.TemporaryDirectory(prefix="scones-eval-photos-") as workdir:
        scored = score_photos(extract_artifact(model_tar, Path(workdir)), photos)
    evaluation = summarize_photos(photos, scored, images_dir, threshold)
    output.mkdir(parents=True, exist_ok=True)
    contact_sheet(photos, scored, output / CONTACT_SHEET)
    evaluation["plots"] = {"misclassified": CONTACT_SHEET}
    return evaluation


def report_lines(evaluation: dict) -> list[str]:
    """The evaluation in a few lines for the terminal."""
    above = evaluation["accuracy_above_threshold"]
    lines = [
        f"photos={evaluation['test_size']} accuracy={evaluation['accuracy']:.4f} "
        f"coverage@{evaluation['threshold']:.2f}={evaluation['coverage']:.4f} "
        f"accuracy@{evaluation['threshold']:.2f}=" + (f"{above:.4f}" if above is not None else "-")
    ]
    for name, block in evaluation["per_class"].items():
        lines.append(f"  class {name:<12} {block.get('accuracy', 0):.4f} of {block['support']}")
    for source, block in evaluation["per_source"].items():
        lines.append(f"  source {source:<11} {block['accuracy']:.4f} of {block['support']}")
    return lines
