# ruff: noqa: E402  (the drift monitor's folder goes on sys.path before its modules are imported)
"""The drift monitor in the local mode: the Lambda's own analysis over a local capture folder,
and batches of test images, clean or shifted, sent through the local workflow.

The analysis (capture parsing, KS tests, verdict, plots) is the drift monitor Lambda's code,
imported from its modules in ``lambda_src/drift_monitor/`` (not its handler). They import one
another by their own names, as in Lambda, so that folder is put on ``sys.path``. Only the
reading differs: every ``.jsonl`` file under a folder (the layout ``classify --capture-dir``
writes), all records, the window being the span of their inference times, the records'
probabilities those of the model record's ``class_names``. The baseline is the file training
writes beside the model record (training/drift_baseline.py), as synth uploads it; for a record
from before training wrote it, the one built from the record's ``evaluation.baseline``.
"""

from __future__ import annotations

import io
import json
import random
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from emulator.errors import EmulatorError
from training.drift_baseline import baseline_path, build_baseline
from training.record import RECORD_NAME, ModelRecordError, read_json, record_class_names

MONITOR_SOURCE = Path(__file__).resolve().parents[1] / "lambda_src" / "drift_monitor"
if str(MONITOR_SOURCE) not in sys.path:
    sys.path.append(str(MONITOR_SOURCE))

from baseline_file import validate_baseline
from capture_baseline import DEFAULT_THRESHOLD as DEFAULT_CONFIDENCE_THRESHOLD
from capture_baseline import baseline_from_capture
from capture_records import CaptureBatch, CapturedInference, parse_capture_text
from drift_plots import CONFIDENCE_PLOT, render_plots
from drift_report import analyse, verdict_line
from drift_settings import DriftSettings  # the analysis' settings, for the commands too

SHIFTS = ("clean", "dark", "blur", "rotate")
DARK_FACTOR = 0.4
BLUR_RADIUS = 1.5
BLUR_REFERENCE_SIDE = 32  # the network's input
PHOTO_JPEG_QUALITY = 90


class DriftInputError(EmulatorError):
    """The model record has no baseline, or the capture folder or test images are missing."""


def record_path_of(model: Path) -> Path:
    """A model record, or the record next to a ``model.tar.gz``."""
    return model if model.suffix == ".json" else model.parent / RECORD_NAME


def model_class_names(model: Path) -> tuple[str, ...]:
    """The class names of a model record (``record_path_of``), in the order of its output."""
    record_path = record_path_of(model)
    try:
        return record_class_names(read_json(record_path), f"model record {record_path}")
    except ModelRecordError as error:  # its message names the record
        raise DriftInputError(str(error)) from error


def load_baseline(model: Path) -> dict[str, Any]:
    """The drift baseline of a model record (``record_path_of``)."""
    record_path = record_path_of(model)
    path = baseline_path(record_path)
    try:
        if path.is_file():
            return validate_baseline(json.loads(path.read_text()))
    except (OSError, ValueError) as error:  # InvalidBaseline is a ValueError
        raise DriftInputError(f"cannot use the drift baseline {path}: {error}") from error
    try:
        record = read_json(record_path)
    except ModelRecordError as error:  # its message names the record
        raise DriftInputError(str(error)) from error
    try:
        return validate_baseline(build_baseline(record))
    except ValueError as error:
        raise DriftInputError(f"{record_path}: {error}") from error


def read_capture_dir(capture_dir: Path, class_names: tuple[str, ...]) -> CaptureBatch:
    """Every line of every ``.jsonl`` file under ``capture_dir``, probabilities of
    ``class_names``."""
    if not capture_dir.is_dir():
        raise DriftInputError(f"no capture folder {capture_dir}")
    batch = CaptureBatch(records=[], skipped=[], class_names=class_names)
    for path in sorted(capture_dir.rglob("*.jsonl")):
        text = path.read_bytes().decode("utf-8", errors="replace")
        batch.extend(parse_capture_text(text, str(path.relative_to(capture_dir)), class_names))
    return batch


def reviewed_baseline(capture_dir: Path, model: Path, described: dict[str, Any]) -> dict:
    """Every record under ``capture_dir`` as a baseline file, as ``capture_baseline`` takes a
    reviewed window (at the workflow's default threshold)."""
    batch = read_capture_dir(capture_dir, model_class_names(model))
    return baseline_from_capture(batch, DEFAULT_CONFIDENCE_THRESHOLD, described)


def record_span(records: Iterable[CapturedInference]) -> tuple[datetime, datetime]:
    """From the first inference time to one second after the last (now, when none has one)."""
    times = [record.inference_time for record in records if record.inference_time is not None]
    if not times:
        now = datetime.now(UTC).replace(microsecond=0)
        return now, now + timedelta(seconds=1)
    return min(times), max(times) + timedelta(seconds=1)


def analyse_capture_dir(
    model: Path,
    capture_dir: Path,
    settings: DriftSettings,
    report_dir: Path | None = None,
) -> dict[str, Any]:
    """The drift report of every record under ``capture_dir``; with ``report_dir``, also
    ``report.json`` and the two PNG plots written there."""
    baseline = load_baseline(model)
    batch = read_capture_dir(capture_dir, model_class_names(model))
    start, end = record_span(batch.records)
    report = analyse(batch, baseline, settings, start, end)
    report["verdict"] = verdict_line(report)
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        report["plots"] = {}
        for name, body in render_plots(report, batch.records, baseline).items():
            (report_dir / name).write_bytes(body)
            kind = "confidence_histogram" if name == CONFIDENCE_PLOT else "timeline"
            report["plots"][kind] = str(report_dir / name)
        report["report_path"] = str(report_dir / "report.json")
        (report_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def shift_image(image: Image.Image, shift: str) -> Image.Image:
    """The image as a changed camera would send it: ``dark`` (40 % brightness), ``blur``
    (Gaussian, radius 1.5 px per 32 px of the shorter side, so that it survives the reduction
    to the network's input), ``rotate`` (90 degrees) or ``clean`` (unchanged)."""
    image = image.convert("RGB")
    if shift == "dark":
        return ImageEnhance.Brightness(image).enhance(DARK_FACTOR)
    if shift == "blur":
        scale = max(1.0, min(image.size) / BLUR_REFERENCE_SIDE)
        return image.filter(ImageFilter.GaussianBlur(BLUR_RADIUS * scale))
    if shift == "rotate":
        return image.transpose(Image.Transpose.ROTATE_90)
    if shift == "clean":
        return image
    raise ValueError(f"unknown shift {shift!r}; choose one of {', '.join(SHIFTS)}")


def test_split_images(data_dir: Path) -> list[Path]:
    """The staged test PNGs of every class, ``<data_dir>/test/<class>/*.png``."""
    paths = sorted((data_dir / "test").glob("*/*.png"))
    if not paths:
        raise DriftInputError(f"no staged test images under {data_dir / 'test'}")
    return paths


@dataclass(frozen=True)
class BatchImage:
    name: str
    body: bytes


def make_batch(paths: list[Path], shift: str, count: int, seed: int) -> list[BatchImage]:
    """``count`` test images drawn with replacement (seeded), shifted, as PNG bytes."""
    rng = random.Random(seed)
    batch = []
    for index, path in enumerate(rng.choices(paths, k=count)):
        with Image.open(path) as image:
            shifted = shift_image(image, shift)
        buffer = io.BytesIO()
        shifted.save(buffer, format="PNG")
        batch.append(
            BatchImage(f"{index:04d}-{shift}-{path.parent.name}-{path.name}", buffer.getvalue())
        )
    return batch


def photo_batch(paths: list[Path], shift: str) -> list[BatchImage]:
    """Each photo once, in order: its own bytes when ``clean``, else upright (EXIF), shifted
    and sent as a JPEG, as a phone would."""
    batch = []
    for index, path in enumerate(paths):
        body, suffix = path.read_bytes(), path.suffix
        if shift != "clean":
            with Image.open(path) as image:
                shifted = shift_image(ImageOps.exif_transpose(image), shift)
            buffer = io.BytesIO()
            shifted.save(buffer, format="JPEG", quality=PHOTO_JPEG_QUALITY)
            body, suffix = buffer.getvalue(), ".jpg"
        batch.append(BatchImage(f"{index:04d}-{shift}-{path.stem}{suffix}", body))
    return batch


def record_with_baseline(record: Path, baseline: dict[str, Any], folder: Path) -> Path:
    """A copy of ``record`` in ``folder`` with ``baseline`` as its drift-baseline.json, as
    the ``drift`` command and synth read it."""
    folder.mkdir(parents=True)
    copy = folder / RECORD_NAME
    copy.write_text(record.read_text())
    baseline_path(copy).write_text(json.dumps(baseline))
    return copy


def send_photos(
    assembly: Path, record: Path, paths: list[Path], capture_dir: Path, shift: str
) -> dict[str, Any]:
    """Each photo (``photo_batch``) through a fresh local workflow with capture on; the
    ``send_batch`` summary."""
    from emulator.workflow import LocalWorkflow  # moto and the sandboxes: only when sending

    with LocalWorkflow(assembly, record, capture_dir=capture_dir) as workflow:
        return send_batch(workflow, photo_batch(paths, shift))


def send_batch(
    workflow: Any,
    images: list[BatchImage],
    progress: Callable[[list[BatchImage]], Iterable[BatchImage]] | None = None,
) -> dict[str, Any]:
    """Upload each image under ``incoming/`` of a started ``LocalWorkflow`` and wait for its
    outcome; the endpoint's capture goes where the workflow's ``capture_dir`` says."""
    outcomes: Counter[str] = Counter()
    for image in (progress or (lambda items: items))(images):
        outcome = workflow.classify_bytes(
            image.body, f"incoming/{uuid.uuid4().hex[:8]}-{image.name}", file=image.name
        )
        outcomes[outcome.status if outcome.status == "SUCCEEDED" else str(outcome.error)] += 1
    workflow.capture_keys()  # flushes the endpoint's buffered capture
    return {"images": len(images), "outcomes": dict(outcomes)}
