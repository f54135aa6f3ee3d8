"""The model record: the hand-off from training to the endpoint stack and the local mode.

``training/train.py`` writes one per run (``build_record``, ``write_record``); the CDK app
deploys it (``ModelRecord.load``), the local mode serves the archive it names
(``read_json``, ``local_artifact``) and the drift monitor builds its baseline from its
``evaluation``. Its ``class_names`` are the model's (training/model/network.py), in the order
of its output: the stacks hand them to the functions that read the endpoint's answer. This
module is their one home for the fields, the default path, the checks and their messages. It
imports neither torch nor CDK: the app imports it at every synth.
"""

from __future__ import annotations

import datetime
import json
import re
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.framework import FRAMEWORK_VERSION, PY_VERSION

REPO_ROOT = Path(__file__).resolve().parents[1]
RECORD_NAME = "model-record.json"
# The configuration a model archive holds (CONFIG_FILE of training/model/inference.py).
MODEL_CONFIG = "model-config.json"
# The record training writes by default and cdk.json deploys (``model_record``), as named
# from the repository root; its path, and the folder training writes its output to.
DEFAULT_RECORD = f"build/model/{RECORD_NAME}"
DEFAULT_PATH = REPO_ROOT / DEFAULT_RECORD
DEFAULT_DIR = DEFAULT_PATH.parent
HOW_TO_TRAIN = (
    "train one with `python training/train.py --local --archive PATH` (or in SageMaker with "
    f"`python training/train.py`), then run `npx cdk synth -c model_record={DEFAULT_RECORD}`"
)

# Every field, in the order training writes them; a record training writes has them all.
FIELDS = (
    "model_data_url",  # the model.tar.gz: an s3:// URI, or a local path
    "image_uri",  # the PyTorch inference image, .../pytorch-inference:<tag>
    "framework_version",
    "py_version",
    "class_names",  # the model's classes, in the order of its output
    "metrics",  # the summary of RECORD_METRIC_KEYS; per-epoch history stays in metrics.json
    "training_job_name",
    "created_at",
    "evaluation",  # the test split's: threshold sweep, recommended threshold, drift baseline
)
# A record from an earlier train.py may lack these and still deploys (without a baseline).
OPTIONAL_FIELDS = ("py_version", "created_at", "evaluation")
CLASS_NAMES_FIELD = "class_names"  # required, but checked on its own: its message says the fix
DEPLOY_FIELDS = tuple(name for name in FIELDS if name not in (*OPTIONAL_FIELDS, CLASS_NAMES_FIELD))
RECORD_METRIC_KEYS = (
    "test_accuracy",
    "val_accuracy",
    "val_accuracy_with_probe",
    "val_loss",
    "train_loss",
    "members",
    "best_epochs",
    "epochs_run",
    "train_seconds",
    "parameters",
    "train_size",
    "validation_size",
    "test_size",
    "hyperparameters",
)
# The repository and tag of an AWS Deep Learning Container image, e.g.
# 763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312
IMAGE_URI_PATTERN = re.compile(
    r"^(?:[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/)?"
    r"(?P<repository>pytorch-inference):(?P<tag>[A-Za-z0-9._-]+)$"
)


class ModelRecordError(ValueError):
    """A model record is unreadable, lacks a field, or has one of the wrong kind."""


def check_class_names(names: Any, where: str = "model record") -> tuple[str, ...]:
    """``names`` as a tuple if they are two or more distinct names, each non-empty, without a
    comma (the functions read them comma-separated) or surrounding spaces."""
    valid = (
        isinstance(names, list | tuple)
        and len(names) >= 2
        and all(
            isinstance(name, str) and name and name == name.strip() and "," not in name
            for name in names
        )
        and len(set(names)) == len(names)
    )
    if not valid:
        raise ModelRecordError(
            f"{where}: class_names {names!r} are not two or more distinct names (non-empty, "
            "without commas or surrounding spaces) in the order of the model's output"
        )
    return tuple(names)


def record_class_names(record: dict[str, Any], where: str) -> tuple[str, ...]:
    """The ``class_names`` of a record read as JSON; ``where`` names it in the messages."""
    if CLASS_NAMES_FIELD not in record:
        raise ModelRecordError(
            f"{where} lacks class_names, the model's classes in the order of its output (an "
            f"older training run wrote none): {HOW_TO_TRAIN}; or add "
            '"class_names": ["bicycle", "motorcycle"] to it, the names in the order of the '
            "model's output"
        )
    return check_class_names(record[CLASS_NAMES_FIELD], where)


def archive_class_names(archive: Path) -> tuple[str, ...]:
    """The model's classes in the order of its output, as the configuration in its archive
    (``model.tar.gz``) declares them: ``model_fn`` sizes the network by them."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            found = [member for member in tar if member.name.removeprefix("./") == MODEL_CONFIG]
            handle = tar.extractfile(found[0]) if found else None
            config = json.load(handle) if handle is not None else None
    except (OSError, tarfile.TarError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelRecordError(f"{archive} is not a readable model archive: {error}") from None
    if not isinstance(config, dict) or CLASS_NAMES_FIELD not in config:
        raise ModelRecordError(f"{archive} has no {MODEL_CONFIG} naming the model's class_names")
    return check_class_names(config[CLASS_NAMES_FIELD], f"{archive} {MODEL_CONFIG}")


def summarize_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    return {key: metrics[key] for key in RECORD_METRIC_KEYS if key in metrics}


def build_record(
    model_data_url: str,
    image_uri: str,
    class_names: Iterable[str],
    metrics: dict[str, Any],
    training_job_name: str,
    evaluation: dict[str, Any],
) -> dict[str, Any]:
    """The record of one training run, every field of ``FIELDS`` set."""
    return {
        "model_data_url": model_data_url,
        "image_uri": image_uri,
        "framework_version": FRAMEWORK_VERSION,
        "py_version": PY_VERSION,
        "class_names": list(class_names),
        "metrics": summarize_metrics(metrics),
        "training_job_name": training_job_name,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "evaluation": evaluation,
    }


def _require(record: dict[str, Any], names: Iterable[str], what: str, advice: str = "") -> None:
    missing = [name for name in names if name not in record]
    if missing:
        raise ModelRecordError(f"{what} lacks {', '.join(missing)}{advice}")


def _write(path: Path, record: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def validate_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` if it is complete, as training writes it: every field, an s3:// or absolute
    ``model_data_url``, the model's ``class_names``, JSON objects for ``metrics`` and
    ``evaluation``."""
    _require(record, FIELDS, "model record")
    url = record["model_data_url"]
    if not isinstance(url, str) or not (url.startswith("s3://") or Path(url).is_absolute()):
        raise ModelRecordError(f"model_data_url {url!r} is neither s3://... nor an absolute path")
    check_class_names(record["class_names"])
    if not isinstance(record["metrics"], dict) or not isinstance(record["evaluation"], dict):
        raise ModelRecordError("metrics and evaluation must be JSON objects")
    return record


def write_record(path: Path, record: dict[str, Any]) -> Path:
    """Write a complete record (``validate_record``) to ``path``; return ``path``."""
    return _write(path, validate_record(record))


def read_json(path: Path, required: Iterable[str] = ()) -> dict[str, Any]:
    """The JSON object at ``path``, with at least the ``required`` fields, otherwise unchecked
    (the local mode serves a record that names only its ``model_data_url``)."""
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelRecordError(f"no model record at {path}: {HOW_TO_TRAIN}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelRecordError(f"model record {path} is not readable JSON: {error}") from None
    if not isinstance(record, dict):
        raise ModelRecordError(f"model record {path} is not a JSON object")
    _require(record, required, f"model record {path}")
    return record


def read_record(path: Path) -> dict[str, Any]:
    """The complete record at ``path`` (``validate_record``), as training wrote it."""
    return validate_record(read_json(path))


def local_artifact(path: Path, model_data_url: str) -> Path | None:
    """The local file a record at ``path`` names (``file://`` or not, relative to the
    record's folder), resolved; None for an s3:// URI."""
    if model_data_url.startswith("s3://"):
        return None
    return (path.parent / model_data_url.removeprefix("file://")).resolve()


@dataclass(frozen=True)
class ModelRecord:
    """A record checked for deploying, its ``model_data_url`` an s3:// URI or the absolute
    path of an existing local archive (which CDK ships as a file asset), its ``class_names``
    checked (``check_class_names``) however it is made."""

    model_data_url: str
    image_uri: str
    framework_version: str
    class_names: tuple[str, ...]
    metrics: dict[str, Any]
    training_job_name: str
    py_version: str | None = None
    created_at: str | None = None
    evaluation: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", check_class_names(self.class_names))

    @property
    def is_local_artifact(self) -> bool:
        return not self.model_data_url.startswith("s3://")

    @property
    def image_repository(self) -> str:
        return self._image("repository")

    @property
    def image_tag(self) -> str:
        return self._image("tag")

    def _image(self, part: str) -> str:
        image = IMAGE_URI_PATTERN.match(self.image_uri)
        if image is None:  # load() refuses such a record; a hand-made one may still have it
            raise ModelRecordError(f"image_uri {self.image_uri!r} is not a PyTorch inference image")
        return image[part]

    @classmethod
    def load(cls, path: Path) -> ModelRecord:
        """The record at ``path``, ready to deploy; ``ModelRecordError`` says what is wrong
        (and how to train a record) otherwise."""
        record = read_json(path)
        _require(record, DEPLOY_FIELDS, f"model record {path}", f"; {HOW_TO_TRAIN}")
        class_names = record_class_names(record, f"model record {path}")
        if not IMAGE_URI_PATTERN.match(str(record["image_uri"])):
            raise ModelRecordError(
                f"model record {path}: image_uri {record['image_uri']!r} is not an AWS PyTorch "
                "inference image (expected .../pytorch-inference:<tag>)"
            )
        model_data_url = str(record["model_data_url"])
        artifact = local_artifact(path, model_data_url)
        if artifact is not None:
            if not artifact.is_file():
                raise ModelRecordError(
                    f"model record {path}: model_data_url {model_data_url!r} is neither an s3:// "
                    f"URI nor an existing local file; {HOW_TO_TRAIN}"
                )
            model_data_url = str(artifact)
        return cls(
            model_data_url=model_data_url,
            image_uri=str(record["image_uri"]),
            framework_version=str(record["framework_version"]),
            class_names=class_names,
            metrics=record["metrics"],
            training_job_name=str(record["training_job_name"]),
            py_version=record.get("py_version"),
            created_at=record.get("created_at"),
            evaluation=record.get("evaluation"),
        )

    def to_json(self) -> dict[str, Any]:
        """The record as JSON, in ``FIELDS`` order, without the optional fields it lacks."""
        values = {name: getattr(self, name) for name in FIELDS}
        values[CLASS_NAMES_FIELD] = list(self.class_names)
        return {name: value for name, value in values.items() if value is not None}

    def write(self, path: Path) -> Path:
        """Write this record, deployable but perhaps incomplete, to ``path``; return ``path``."""
        return _write(path, self.to_json())
