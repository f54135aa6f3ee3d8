"""Score a ``model.tar.gz`` on the test split through its own inference handlers.

Every test PNG goes through ``input_fn`` -> ``predict_fn`` -> ``output_fn`` of the
artifact's ``code/inference.py``, exactly as the endpoint would serve it. The result:
accuracy, per-class precision and recall, the confusion matrix, a threshold sweep
(coverage and accuracy of the inferences that pass the workflow's confidence filter) with
a recommended threshold, the baseline a drift monitor compares live traffic to, and three
PNG plots.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

if __package__ in (None, ""):  # run as a script: make the `training` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.model.network import CLASS_NAMES  # noqa: E402  (the model's, in output order)

CLASS_FOLDERS = "{" + ",".join(CLASS_NAMES) + "}/*.png"  # a staged split's layout
ARTIFACT_MODULES = ("inference", "network", "photo_expert", "thumbnail_probe")
CONFUSION_PLOT = "confusion_matrix.png"
HISTOGRAM_PLOT = "confidence_histogram.png"
SWEEP_PLOT = "threshold_sweep.png"
SWEEP_THRESHOLDS = tuple(round(0.5 + step / 100, 2) for step in range(50))
DEFAULT_TARGET_ACCURACY = 0.97
DEFAULT_MIN_COVERAGE = 0.7


class EvaluationError(Exception):
    """The artifact or the test folder cannot be evaluated."""


@dataclass(frozen=True)
class Scored:
    label: int
    probabilities: tuple[float, float]
    brightness: float
    width: int
    height: int

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float:
        return max(self.probabilities)


def import_from_folder(folder: Path, module: str) -> ModuleType:
    """Import ``module`` (a top-level module of ``folder``, as in the SageMaker containers)
    and its sibling imports from ``folder`` only, leaving ``sys.path`` and the other loaded
    modules of the same names untouched.
    """
    isolated = {module, *ARTIFACT_MODULES, *(path.stem for path in folder.glob("*.py"))}
    saved = {name: sys.modules.pop(name) for name in isolated if name in sys.modules}
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(folder))
        for name in isolated:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def load_inference_module(code_dir: Path) -> ModuleType:
    """The artifact's ``inference`` module (with its ``network``) from ``code_dir``."""
    return import_from_folder(code_dir, "inference")


def extract_artifact(model_tar: Path, dest: Path) -> Path:
    try:
        with tarfile.open(model_tar, "r:gz") as archive:
            archive.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise EvaluationError(f"{model_tar} is not a readable model.tar.gz: {error}") from error
    if not (dest / "code" / "inference.py").is_file():
        raise EvaluationError(f"{model_tar} has no code/inference.py")
    return dest


def labelled_test_files(test_dir: Path) -> list[tuple[int, Path]]:
    """(class index, path) of every ``<class>/*.png`` under ``test_dir``, in a fixed order."""
    files = [
        (index, path)
        for index, name in enumerate(CLASS_NAMES)
        for path in sorted((test_dir / name).glob("*.png"))
    ]
    if not files:
        raise EvaluationError(f"{test_dir} holds no {CLASS_FOLDERS} test images")
    return files


def score_test_split(model_dir: Path, test_dir: Path) -> tuple[list[Scored], float]:
    """Scores of every test image, and the mean in-process latency per request in ms."""
    inference = load_inference_module(model_dir / "code")
    model = inference.model_fn(str(model_dir))
    scored, elapsed = [], 0.0
    files = labelled_test_files(test_dir)
    for label, path in tqdm(files, desc="evaluate", unit="image"):
        body = path.read_bytes()
        started = time.perf_counter()
        data = inference.input_fn(body, "image/png")
        response = inference.output_fn(inference.predict_fn(data, model), "application/json")
        elapsed += time.perf_counter() - started
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
            width, height = image.size
        probabilities = tuple(json.loads(response))
        scored.append(Scored(label, probabilities, float(pixels.mean()), width, height))
    return scored, 1000 * elapsed / len(files)


def threshold_sweep(scored: list[Scored]) -> list[dict]:
    confidences = np.array([item.confidence for item in scored])
    correct = np.array([item.predicted == item.label for item in scored])
    sweep = []
    for threshold in SWEEP_THRESHOLDS:
        passing = confidences >= threshold
        sweep.append(
            {
                "threshold": threshold,
                "coverage": float(passing.mean()),
                "accuracy": float(correct[passing].mean()) if passing.any() else None,
            }
        )
    return sweep


def recommend_threshold(
    sweep: list[dict],
    target_accuracy: float = DEFAULT_TARGET_ACCURACY,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> float:
    """The lowest threshold whose passing inferences reach ``target_accuracy`` while at least
    ``min_coverage`` of the images pass; else the most accurate threshold with that coverage.
    """
    eligible = [row for row in sweep if row["coverage"] >= min_coverage and row["accuracy"]]
    if not eligible:
        return sweep[0]["threshold"]
    reaching = [row for row in eligible if row["accuracy"] >= target_accuracy]
    if reaching:
        return reaching[0]["threshold"]
    return max(eligible, key=lambda row: (row["accuracy"], -row["threshold"]))["threshold"]


def _plot_confusion(matrix: np.ndarray, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(4.5, 4))
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=color, fontsize=14)
    axes.set_xticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    axes.set_yticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix (test split)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_histogram(scored: list[Scored], threshold: float, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0.5, 1.0, 26)
    right = [item.confidence for item in scored if item.predicted == item.label]
    wrong = [item.confidence for item in scored if item.predicted != item.label]
    axes.hist(
        [right, wrong],
        bins=bins,
        stacked=True,
        label=["correct", "wrong"],
        color=["tab:green", "tab:red"],
    )
    axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.2f}")
    axes.set_xlabel("top-class probability")
    axes.set_ylabel("test images")
    axes.set_title("Confidence histogram (test split)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_sweep(sweep: list[dict], threshold: float, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    thresholds = [row["threshold"] for row in sweep]
    axes.plot(thresholds, [row["coverage"] for row in sweep], label="coverage (passing share)")
    axes.plot(thresholds, [row["accuracy"] or np.nan for row in sweep], label="accuracy of passing")
    axes.axvline(threshold, color="black", linestyle="--", label=f"recommended {threshold:.2f}")
    axes.set_xlabel("confidence threshold")
    axes.set_ylim(0, 1.02)
    axes.set_title("Threshold sweep (test split)")
    axes.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def summarize(
    scored: list[Scored],
    target_accuracy: float = DEFAULT_TARGET_ACCURACY,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> dict:
    """The evaluation block of the model record (without plots and latency)."""
    labels = np.array([item.label for item in scored])
    predicted = np.array([item.predicted for item in scored])
    matrix = np.zeros((len(CLASS_NAMES), len(CLASS_NAMES)), dtype=int)
    for truth, guess in zip(labels, predicted, strict=True):
        matrix[truth, guess] += 1
    per_class = {}
    for index, name in enumerate(CLASS_NAMES):
        predicted_count, true_count = matrix[:, index].sum(), matrix[index, :].sum()
        per_class[name] = {
            "precision": float(matrix[index, index] / predicted_count) if predicted_count else 0.0,
            "recall": float(matrix[index, index] / true_count) if true_count else 0.0,
            "support": int(true_count),
        }
    sweep = threshold_sweep(scored)
    threshold = recommend_threshold(sweep, target_accuracy, min_coverage)
    confidences = [round(item.confidence, 6) for item in scored]
    return {
        "test_size": len(scored),
        "accuracy": float((labels == predicted).mean()),
        "per_class": per_class,
        "confusion_matrix": {"labels": list(CLASS_NAMES), "matrix": matrix.tolist()},
        "threshold_sweep": sweep,
        "recommended_threshold": threshold,
        "threshold_rule": {"target_accuracy": target_accuracy, "min_coverage": min_coverage},
        "baseline": {
            "top_confidences": confidences,
            "low_confidence_rate": float(np.mean(np.array(confidences) < threshold)),
            "predicted_class_mix": {
                name: float(np.mean(predicted == index)) for index, name in enumerate(CLASS_NAMES)
            },
            "brightness": [round(item.brightness, 3) for item in scored],
            "width": [item.width for item in scored],
            "height": [item.height for item in scored],
        },
    }


def evaluate_artifact(
    model_tar: Path,
    test_dir: Path,
    plot_dir: Path,
    target_accuracy: float = DEFAULT_TARGET_ACCURACY,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> dict:
    """Evaluate ``model_tar`` on ``test_dir``; write the plots to ``plot_dir``."""
    with tempfile.TemporaryDirectory(prefix="scones-eval-") as workdir:
        model_dir = extract_artifact(model_tar, Path(workdir))
        scored, latency_ms = score_test_split(model_dir, test_dir)
    evaluation = summarize(scored, target_accuracy, min_coverage)
    evaluation["latency_ms_per_image"] = round(latency_ms, 3)
    plot_dir.mkdir(parents=True, exist_ok=True)
    threshold = evaluation["recommended_threshold"]
    _plot_confusion(np.array(evaluation["confusion_matrix"]["matrix"]), plot_dir / CONFUSION_PLOT)
    _plot_histogram(scored, threshold, plot_dir / HISTOGRAM_PLOT)
    _plot_sweep(evaluation["threshold_sweep"], threshold, plot_dir / SWEEP_PLOT)
    evaluation["plots"] = {
        "confusion_matrix": CONFUSION_PLOT,
        "confidence_histogram": HISTOGRAM_PLOT,
        "threshold_sweep": SWEEP_PLOT,
    }
    return evaluation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Score a model.tar.gz through its own inference handlers, on the staged "
        "test split (--test-dir) or on labelled real photos (--images); write plots and print "
        "(or store in a model record) the evaluation."
    )
    parser.add_argument("--model", type=Path, required=True, help="path of model.tar.gz")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--test-dir", type=Path, help=f"staged test split: {CLASS_FOLDERS}")
    data.add_argument(
        "--images",
        type=Path,
        help="real photos of any size: DIR/<label>/*, or any layout with a DIR/manifest.csv "
        "whose file and label columns name them (its source column groups the scores); "
        "adds accuracy per source and a contact sheet of the misclassified photos",
    )
    parser.add_argument("--output", type=Path, required=True, help="folder for the plots")
    parser.add_argument(
        "--record",
        type=Path,
        help="model-record.json whose 'evaluation' block to replace (with --images: its "
        "'evaluation.photos' block)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.75,
        help="--images: confidence threshold for coverage and accuracy above it "
        "(default 0.75, the workflow's confidence_threshold)",
    )
    parser.add_argument(
        "--target-accuracy",
        type=float,
        default=DEFAULT_TARGET_ACCURACY,
        help="accuracy the confidence filter should reach on passing images",
    )
    parser.add_argument(
        "--min-coverage",
        type=float,
        default=DEFAULT_MIN_COVERAGE,
        help="share of images that must pass the recommended threshold",
    )
    args = parser.parse_args(argv)
    from training.evaluate_photos import evaluate_photo_folder, report_lines
    from training.photos import PhotoFolderError

    try:
        if args.images:
            evaluation = evaluate_photo_folder(args.model, args.images, args.output, args.threshold)
        else:
            evaluation = evaluate_artifact(
                args.model, args.test_dir, args.output, args.target_accuracy, args.min_coverage
            )
    except (EvaluationError, PhotoFolderError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.record:
        record = json.loads(args.record.read_text())
        if args.images:
            record["evaluation"]["photos"] = evaluation
        else:
            record["evaluation"] = evaluation
        args.record.write_text(json.dumps(record, indent=2))
    if args.images:
        print("\n".join(report_lines(evaluation)))
        print(f"contact sheet of the misclassified photos in {args.output}")
        return 0
    print(
        f"accuracy={evaluation['accuracy']:.4f} "
        f"recommended_threshold={evaluation['recommended_threshold']:.2f} plots in {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
