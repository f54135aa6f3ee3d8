"""Launch the training entry point as a SageMaker training job with boto3 alone.

The bucket and the training role come from the SSM parameters the storage stack writes.
The job runs ``training/model/train_model.py`` in the AWS PyTorch training container
(the framework-container convention: the source folder as ``sourcedir.tar.gz`` named by
the ``sagemaker_submit_directory`` and ``sagemaker_program`` hyperparameters, every
hyperparameter value JSON-encoded). S3 layout: ``data/`` staged images, ``models/`` job
output, ``checkpoints/`` spot checkpoints.
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from training.image_uris import pytorch_image_uri

MODEL_SOURCE_DIR = Path(__file__).resolve().parent / "model"
ENTRY_POINT = "train_model.py"
SOURCE_MODULES = ("train_model.py", "inference.py", "network.py")
DEFAULT_SSM_PREFIX = "/scones-unlimited"
BUCKET_PARAMETER = "data-bucket-name"
ROLE_PARAMETER = "sagemaker-training-role-arn"
DATA_PREFIX = "data"
MODELS_PREFIX = "models"
CHECKPOINTS_PREFIX = "checkpoints"
CONTAINER_CHECKPOINT_DIR = "/opt/ml/checkpoints"
# SageMaker metric name -> the entry point's log key (also the model record's metric name).
METRIC_KEYS = {
    "train:loss": "train_loss",
    "validation:loss": "val_loss",
    "validation:accuracy": "val_accuracy",
    "test:accuracy": "test_accuracy",
}
METRIC_DEFINITIONS = tuple(
    {"Name": name, "Regex": key + r"=([0-9.]+)"} for name, key in METRIC_KEYS.items()
)
TERMINAL_STATUSES = ("Completed", "Failed", "Stopped")


class CloudError(Exception):
    """A cloud-mode failure whose message is one line for the user."""


@dataclass(frozen=True)
class JobOptions:
    job_name: str
    region: str
    bucket: str
    role_arn: str
    instance_type: str = "ml.m5.large"
    volume_size_gb: int = 10
    max_runtime_seconds: int = 3600
    spot: bool = False
    max_wait_seconds: int = 7200
    hyperparameters: dict[str, str] | None = None
    image_uri: str | None = None


def limit_metadata_wait() -> None:
    """Keep botocore's instance-metadata lookup short (1 s, 1 try) unless the user set it."""
    os.environ.setdefault("AWS_METADATA_SERVICE_TIMEOUT", "1")
    os.environ.setdefault("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "1")


def check_session(session: Any) -> str:
    """Fail with one line when credentials or the region are missing; return the region."""
    if session.get_credentials() is None:
        raise CloudError(
            "no AWS credentials found: configure a profile (aws configure, AWS_PROFILE) or "
            "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; or train locally with --local"
        )
    if not session.region_name:
        raise CloudError("no AWS region configured: set AWS_REGION or pass --region")
    return session.region_name


def read_stack_parameters(ssm_client: Any, prefix: str) -> tuple[str, str]:
    """(bucket name, training role ARN) from the storage stack's SSM parameters."""
    prefix = prefix.rstrip("/")
    names = [f"{prefix}/{BUCKET_PARAMETER}", f"{prefix}/{ROLE_PARAMETER}"]
    response = ssm_client.get_parameters(Names=names)
    found = {item["Name"]: item["Value"] for item in response["Parameters"]}
    missing = [name for name in names if name not in found]
    if missing:
        raise CloudError(
            f"SSM parameter(s) {', '.join(missing)} not found in this account/region: "
            "deploy the storage stack first (npx cdk deploy --all)"
        )
    return found[names[0]], found[names[1]]


def pack_source_dir(dest: Path) -> Path:
    """``sourcedir.tar.gz`` with the entry point and the modules it imports, at the top."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as archive:
        for module in SOURCE_MODULES:
            archive.add(MODEL_SOURCE_DIR / module, arcname=module)
    return dest


def encode_hyperparameters(values: dict[str, Any]) -> dict[str, str]:
    """JSON-encode each value, as the framework containers expect (strings get quotes)."""
    return {str(name): json.dumps(value) for name, value in values.items()}


def build_training_job_request(options: JobOptions, source_uri: str) -> dict[str, Any]:
    """The exact CreateTrainingJob parameters for one run of the entry point."""
    bucket = options.bucket
    hyperparameters: dict[str, Any] = dict(options.hyperparameters or {})
    if options.spot:
        hyperparameters["checkpoint-dir"] = CONTAINER_CHECKPOINT_DIR
    hyperparameters.update(
        {
            "sagemaker_program": ENTRY_POINT,
            "sagemaker_submit_directory": source_uri,
            "sagemaker_region": options.region,
        }
    )
    image = options.image_uri or pytorch_image_uri(
        options.region, "training", options.instance_type
    )
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": options.max_runtime_seconds}
    if options.spot:
        stopping["MaxWaitTimeInSeconds"] = options.max_wait_seconds
    request: dict[str, Any] = {
        "TrainingJobName": options.job_name,
        "AlgorithmSpecification": {
            "TrainingImage": image,
            "TrainingInputMode": "File",
            "MetricDefinitions": [dict(item) for item in METRIC_DEFINITIONS],
        },
        "RoleArn": options.role_arn,
        "HyperParameters": encode_hyperparameters(hyperparameters),
        "InputDataConfig": [
            {
                "ChannelName": split,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{bucket}/{DATA_PREFIX}/{split}/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "image/png",
            }
            for split in ("train", "test")
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/{MODELS_PREFIX}/"},
        "ResourceConfig": {
            "InstanceType": options.instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": options.volume_size_gb,
        },
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": options.spot,
        "Tags": [{"Key": "project", "Value": "scones-unlimited"}],
    }
    if options.spot:
        request["CheckpointConfig"] = {
            "S3Uri": f"s3://{bucket}/{CHECKPOINTS_PREFIX}/{options.job_name}/",
            "LocalPath": CONTAINER_CHECKPOINT_DIR,
        }
    return request


def upload_source(s3_client: Any, bucket: str, job_name: str, workdir: Path) -> str:
    archive = pack_source_dir(workdir / "sourcedir.tar.gz")
    key = f"{MODELS_PREFIX}/{job_name}/source/sourcedir.tar.gz"
    s3_client.upload_file(str(archive), bucket, key)
    return f"s3://{bucket}/{key}"


def wait_for_job(
    sagemaker_client: Any,
    job_name: str,
    poll_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the job ends; return its description, or raise CloudError if it failed."""
    with tqdm(
        desc=f"training job {job_name}", unit="s", bar_format="{desc}: {postfix} [{elapsed}]"
    ) as progress:
        while True:
            description = sagemaker_client.describe_training_job(TrainingJobName=job_name)
            status = description["TrainingJobStatus"]
            progress.set_postfix_str(f"{status} / {description.get('SecondaryStatus', '')}")
            if status in TERMINAL_STATUSES:
                break
            sleep(poll_seconds)
    if status != "Completed":
        reason = description.get("FailureReason", "no reason given")
        raise CloudError(f"training job {job_name} ended {status}: {reason}")
    return description


def final_metrics(description: dict[str, Any]) -> dict[str, float]:
    """The job's final metric values under the entry point's names (``val_accuracy``, ...)."""
    metrics = description.get("FinalMetricDataList", [])
    return {METRIC_KEYS.get(m["MetricName"], m["MetricName"]): m["Value"] for m in metrics}


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise CloudError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key
