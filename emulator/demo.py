"""The README's main command: stage, train (once), synthesize, classify a test sample, report."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from emulator.assembly import CACHE_ROOT, REPO_ROOT, cached_assembly
from emulator.workflow import LocalWorkflow, Outcome
from training.record import DEFAULT_DIR, RECORD_NAME, ModelRecord, ModelRecordError

DEFAULT_MODEL_DIR = DEFAULT_DIR
DEFAULT_DATA_DIR = REPO_ROOT / "build" / "data"
DEFAULT_REPORT_ROOT = REPO_ROOT / "build" / "local-mode" / "reports"


@dataclass
class DemoResult:
    rows: list[tuple[Path, str, Outcome, float | None]]
    accuracy: float
    coverage: float
    model_accuracy: float
    threshold: float
    report_dir: Path
    class_names: tuple[str, ...]  # the model's, in the order of its output


def stage(archive: Path | None, data_dir: Path) -> Path:
    """The staged image folders (``train/`` and ``test/``), staged once."""
    from training import stage_data

    if (data_dir / "test").is_dir() and (data_dir / "train").is_dir():
        return data_dir
    staged = stage_data.stage_local(data_dir, archive, download_dir=data_dir.parent / "downloads")
    return staged.root


def model_record(model_dir: Path, data_dir: Path, epochs: int | None, log: TextIO) -> Path:
    """The record in ``model_dir``, trained locally first when there is none, or none the
    stacks can deploy (e.g. one from an older training run, without class_names)."""
    record = model_dir / RECORD_NAME
    if not record.is_file():
        print(f"model: none at {record}, training locally", file=log)
    else:
        try:
            ModelRecord.load(record)
        except ModelRecordError as error:
            print(f"model: cannot use {record} ({error}); training locally over it", file=log)
        else:
            print(f"model: reusing {record}", file=log)
            return record
    from training.train import train_local

    return train_local(
        archive=None, output=model_dir, epochs=epochs, data_dir=data_dir, skip_staging=True
    )


def sample_test_images(
    data_dir: Path, class_names: Sequence[str], count: int, seed: int
) -> list[tuple[Path, str]]:
    """``count`` test images, an equal share of each class, in a seeded random order."""
    rng = random.Random(seed)
    chosen: list[tuple[Path, str]] = []
    for index, label in enumerate(class_names):
        files = sorted((data_dir / "test" / label).glob("*.png"))
        share = count // len(class_names) + (1 if index < count % len(class_names) else 0)
        chosen += [(path, label) for path in rng.sample(files, min(share, len(files)))]
    rng.shuffle(chosen)
    return chosen


def write_report(result: DemoResult) -> None:
    """Plots and the raw outcomes next to each other in the report folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    report = result.report_dir
    report.mkdir(parents=True, exist_ok=True)
    with (report / "outcomes.jsonl").open("w") as out:
        for path, truth, outcome, confidence in result.rows:
            record = {**outcome.as_json(), "truth": truth, "model_confidence": confidence}
            record["file"] = str(path)
            out.write(json.dumps(record) + "\n")

    classes = result.class_names
    outcome_names = [*classes, "rejected"]
    matrix = np.zeros((len(classes), len(outcome_names)), dtype=int)
    for _, truth, outcome, _ in result.rows:
        column = outcome.label if outcome.label in classes else "rejected"
        matrix[classes.index(truth), outcome_names.index(column)] += 1
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(outcome_names)), outcome_names)
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("workflow outcome")
    axes.set_ylabel("truth")
    for (row, column), value in np.ndenumerate(matrix):
        axes.text(column, row, str(value), ha="center", va="center")
    axes.set_title(f"Local workflow: accuracy {result.accuracy:.0%} of classified")
    figure.tight_layout()
    figure.savefig(report / "confusion_matrix.png", dpi=120)
    plt.close(figure)

    confidences = [c for *_, c in result.rows if c is not None]
    figure, axes = plt.subplots(figsize=(5, 3.5))
    axes.hist(confidences, bins=20, range=(0.5, 1.0), color="tab:blue")
    axes.axvline(
        result.threshold, color="tab:red", linestyle="--", label=f"threshold {result.threshold:.2f}"
    )
    axes.set_xlabel("max(p) returned by the endpoint")
    axes.set_ylabel("images")
    axes.legend()
    figure.tight_layout()
    figure.savefig(report / "confidence_histogram.png", dpi=120)
    plt.close(figure)


def run_demo(
    archive: Path | None,
    sample: int,
    seed: int,
    epochs: int | None,
    out: TextIO,
    log: TextIO,
    progress: Callable[[list], list] | None = None,
    model_dir: Path = DEFAULT_MODEL_DIR,
    data_dir: Path = DEFAULT_DATA_DIR,
    report_root: Path = DEFAULT_REPORT_ROOT,
    assembly_cache: Path = CACHE_ROOT,
) -> DemoResult:
    started = time.perf_counter()
    data_root = stage(archive, data_dir)
    record = model_record(model_dir, data_root, epochs, log)
    assembly = cached_assembly(record, cache_root=assembly_cache)
    print(f"assembly: {assembly}", file=log)
    rows: list[tuple[Path, str, Outcome, float | None]] = []
    argmax_hits: list[bool] = []
    report_dir = report_root / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    capture_dir = report_dir / "capture"
    with LocalWorkflow(assembly, record, capture_dir=capture_dir) as workflow:
        classify_fn = workflow.spec.classify.name
        threshold = workflow.spec.threshold
        classes = workflow.spec.class_names
        images = sample_test_images(data_root, classes, sample, seed)
        for path, truth in (progress or (lambda items: items))(images):
            outcome = workflow.classify(path)
            inferences = next(
                (
                    call.result["inferences"]
                    for call in reversed(workflow.runtime.invocations)
                    if call.function_name == classify_fn
                    and isinstance(call.result, dict)
                    and call.result.get("s3_key") == outcome.s3_key
                ),
                None,
            )
            rows.append((path, truth, outcome, max(inferences) if inferences else None))
            if inferences:
                argmax_hits.append(classes[inferences.index(max(inferences))] == truth)
    classified = [(truth, o) for _, truth, o, _ in rows if o.status == "SUCCEEDED"]
    accuracy = (
        sum(truth == o.label for truth, o in classified) / len(classified) if classified else 0.0
    )
    coverage = len(classified) / len(rows) if rows else 0.0
    model_accuracy = sum(argmax_hits) / len(argmax_hits) if argmax_hits else 0.0
    result = DemoResult(rows, accuracy, coverage, model_accuracy, threshold, report_dir, classes)
    write_report(result)
    drift_line = drift_report(record, capture_dir, threshold, report_dir / "drift")

    print(f"{'image':<34} {'truth':<10} {'label':<10} {'confidence':>10}  outcome", file=out)
    for path, truth, outcome, confidence in rows:
        shown = f"{confidence:.3f}" if confidence is not None else "-"
        verdict = outcome.status if outcome.status == "SUCCEEDED" else outcome.error
        print(
            f"{path.name[:34]:<34} {truth:<10} {outcome.label or '-':<10} {shown:>10}  {verdict}",
            file=out,
        )
    shown_accuracy = f"{accuracy:.1%}" if classified else "n/a"
    print(
        f"\naccuracy {shown_accuracy} on the {len(classified)} images classified above the "
        f"threshold {threshold:.2f} ({coverage:.0%} of {len(rows)}); the model's top class "
        f"is right for {model_accuracy:.1%} of all {len(argmax_hits)}; "
        f"{time.perf_counter() - started:.1f} s",
        file=out,
    )
    print(
        f"report: {result.report_dir} (confusion_matrix.png, confidence_histogram.png, "
        "outcomes.jsonl)",
        file=out,
    )
    print(drift_line, file=out)
    return result


def drift_report(record: Path, capture_dir: Path, threshold: float, report_dir: Path) -> str:
    """The drift monitor over this run's capture: one line naming the report and the verdict."""
    from emulator.drift import DriftInputError, DriftSettings, analyse_capture_dir

    settings = DriftSettings(confidence_threshold=threshold)
    try:
        report = analyse_capture_dir(record, capture_dir, settings, report_dir)
    except DriftInputError as error:
        return f"drift: not analysed ({error})"
    return f"drift: {report['report_path']}: {report['verdict']}"
