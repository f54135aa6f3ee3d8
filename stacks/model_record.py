"""The model record that `training/train.py` writes and the endpoint stack deploys."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

REQUIRED_FIELDS = (
    "model_data_url",
    "image_uri",
    "framework_version",
    "metrics",
    "training_job_name",
)
# The repository and tag of an AWS Deep Learning Container image, e.g.
# 763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312
IMAGE_URI_PATTERN = re.compile(
    r"^(?:[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/)?"
    r"(?P<repository>pytorch-inference):(?P<tag>[A-Za-z0-9._-]+)$"
)
HOW_TO_TRAIN = (
    "train one with `python training/train.py --local --archive PATH` (or in SageMaker with "
    "`python training/train.py`), then run "
    "`npx cdk synth -c model_record=build/model/model-record.json`"
)


class ModelRecordError(ValueError):
    """The model record is unreadable or lacks what the endpoint needs."""


@dataclass(frozen=True)
class ModelRecord:
    """What the endpoint stack needs from one training run."""

    model_data_url: str
    image_repository: str
    image_tag: str
    framework_version: str
    training_job_name: str

    @property
    def is_local_artifact(self) -> bool:
        """True when the artifact is a local `model.tar.gz` that CDK ships as a file asset."""
        return not self.model_data_url.startswith("s3://")

    @classmethod
    def load(cls, path: Path) -> ModelRecord:
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelRecordError(f"no model record at {path}: {HOW_TO_TRAIN}") from None
        except (OSError, json.JSONDecodeError) as error:
            raise ModelRecordError(f"model record {path} is not readable JSON: {error}") from None
        if not isinstance(record, dict):
            raise ModelRecordError(f"model record {path} is not a JSON object")
        missing = [field for field in REQUIRED_FIELDS if field not in record]
        if missing:
            raise ModelRecordError(
                f"model record {path} lacks {', '.join(missing)}; {HOW_TO_TRAIN}"
            )

        image = IMAGE_URI_PATTERN.match(str(record["image_uri"]))
        if not image:
            raise ModelRecordError(
                f"model record {path}: image_uri {record['image_uri']!r} is not an AWS PyTorch "
                "inference image (expected .../pytorch-inference:<tag>)"
            )
        model_data_url = str(record["model_data_url"])
        if not model_data_url.startswith("s3://"):
            artifact = (path.parent / model_data_url).resolve()
            if not artifact.is_file():
                raise ModelRecordError(
                    f"model record {path}: model_data_url {model_data_url!r} is neither an s3:// "
                    f"URI nor an existing local file; {HOW_TO_TRAIN}"
                )
            model_data_url = str(artifact)
        return cls(
            model_data_url=model_data_url,
            image_repository=image["repository"],
            image_tag=image["tag"],
            framework_version=str(record["framework_version"]),
            training_job_name=str(record["training_job_name"]),
        )
