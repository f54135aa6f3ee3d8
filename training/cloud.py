"""Launch the training entry point as a SageMaker training job with sagemaker-core.

The bucket and the training role come from the SSM parameters the storage stack writes.
The job runs ``training/model/train_model.py`` in the AWS PyTorch training container
(the framework-container convention: the source folder as ``sourcedir.tar.gz`` named by
the ``sagemaker_submit_directory`` and ``sagemaker_program`` hyperparameters, every
hyperparameter value JSON-encoded). S3 layout: ``data/`` staged images, ``models/`` job
output, ``checkpoints/`` spot checkpoints.

sagemaker-core (the SageMaker Python SDK's resource layer) creates the job from its typed
shapes, reads it back, and names the container images offline. It takes more than a second
to import, so it is imported here only inside the functions that launch a job: the local
mode and the CDK app never load it.
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tqdm import tqdm

from stacks.names import (
    BUCKET_PARAMETER,
    CHECKPOINTS_PREFIX,
    DATA_PREFIX,
    MODELS_PREFIX,
    ROLE_PARAMETER,
    ssm_prefix,
)
from training.framework import FRAMEWORK_VERSION, PY_VERSION

if TYPE_CHECKING:
    import boto3
    from sagemaker.core.resources import TrainingJob

MODEL_SOURCE_DIR = Path(__file__).resolve().parent / "model"
ENTRY_POINT = "train_model.py"
SOURCE_MODULES = (
    "train_model.py",
    "hyperparameters.py",
    "training_data.py",
    "augmentation.py",
    "fitting.py",
    "ensemble.py",
    "artifact.py",
    "inference.py",
    "network.py",
    "photo_expert.py",
    "thumbnail_probe.py",
)
DEFAULT_SSM_PREFIX = ssm_prefix()
CONTAINER_CHECKPOINT_DIR = "/opt/ml/checkpoints"
CHANNELS = ("train", "test")
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
ImageScope = Literal["training", "inference"]


class CloudError(Exception):
    """A cloud-mode failure whose message is one line for the user."""


@dataclass(frozen=True)
class JobOptions:
    job_name: str
    region: str
    bucket: str
    role_arn: str
    image_uri: str
    instance_type: str = "ml.m5.large"
    volume_size_gb: int = 10
    max_runtime_seconds: int = 3600
    spot: bool = False
    max_wait_seconds: int = 7200
    hyperparameters: dict[str, Any] | None = None


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


def pytorch_image_uri(region: str, scope: ImageScope, instance_type: str) -> str:
    """The pinned PyTorch training or inference image for a region and instance type."""
    from sagemaker.core import image_uris

    try:
        return image_uris.retrieve(
            "pytorch",
            region,
            version=FRAMEWORK_VERSION,
            py_version=PY_VERSION,
            instance_type=instance_type,
            image_scope=scope,
        )
    except ValueError as error:
        reason = str(error).split(". ")[0]
        option = "--image-uri" if scope == "training" else "--inference-image-uri"
        raise CloudError(
            f"no PyTorch {FRAMEWORK_VERSION} {scope} image for {instance_type} in {region} "
            f"({reason}); pass {option}"
        ) from None


def pack_source_dir(dest: Path) -> Path:
    """``sourcedir.tar.gz`` with the entry point, the modules it imports and the photo expert's
    weights (the training container has no copy), at the top."""
    from training.evaluate import import_from_folder

    artifact = import_from_folder(MODEL_SOURCE_DIR, "artifact")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as archive:
        for module in SOURCE_MODULES:
            archive.add(MODEL_SOURCE_DIR / module, arcname=module)
        archive.add(artifact.photo_expert_weights(), arcname=artifact.PHOTO_EXPERT_FILE)
    return dest


def upload_source(s3_client: Any, bucket: str, job_name: str, workdir: Path) -> str:
    archive = pack_source_dir(workdir / "sourcedir.tar.gz")
    key = f"{MODELS_PREFIX}{job_name}/source/sourcedir.tar.gz"
    s3_client.upload_file(str(archive), bucket, key)
    return f"s3://{bucket}/{key}"


def encode_hyperparameters(values: dict[str, Any]) -> dict[str, str]:
    """JSON-encode each value, as the framework containers expect (strings get quotes)."""
    return {str(name): json.dumps(value) for name, value in values.items()}


def training_job_arguments(options: JobOptions, source_uri: str) -> dict[str, Any]:
    """``TrainingJob.create`` arguments, as sagemaker-core shapes, for one entry-point run."""
    from sagemaker.core import shapes
    from sagemaker.core.resources import Tag

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
    arguments: dict[str, Any] = {
        "training_job_name": options.job_name,
        "algorithm_specification": shapes.AlgorithmSpecification(
            training_image=options.image_uri,
            training_input_mode="File",
            metric_definitions=[
                shapes.MetricDefinition(name=item["Name"], regex=item["Regex"])
                for item in METRIC_DEFINITIONS
            ],
        ),
        "role_arn": options.role_arn,
        "hyper_parameters": encode_hyperparameters(hyperparameters),
        "input_data_config": [
            shapes.Channel(
                channel_name=channel,
                data_source=shapes.DataSource(
                    s3_data_source=shapes.S3DataSource(
                        s3_data_type="S3Prefix",
                        s3_uri=f"s3://{bucket}/{DATA_PREFIX}{channel}/",
                        s3_data_distribution_type="FullyReplicated",
                    )
                ),
                content_type="image/png",
            )
            for channel in CHANNELS
        ],
        "output_data_config": shapes.OutputDataConfig(
            s3_output_path=f"s3://{bucket}/{MODELS_PREFIX}"
        ),
        "resource_config": shapes.ResourceConfig(
            instance_type=options.instance_type,
            instance_count=1,
            volume_size_in_gb=options.volume_size_gb,
        ),
        "stopping_condition": shapes.StoppingCondition(
            max_runtime_in_seconds=options.max_runtime_seconds,
            max_wait_time_in_seconds=options.max_wait_seconds if options.spot else None,
        ),
        "enable_managed_spot_training": options.spot,
        # resources.Tag: the name that TrainingJob.create's signature resolves to.
        "tags": [Tag(key="project", value="scones-unlimited")],
    }
    if options.spot:
        arguments["checkpoint_config"] = shapes.CheckpointConfig(
            s3_uri=f"s3://{bucket}/{CHECKPOINTS_PREFIX}{options.job_name}/",
            local_path=CONTAINER_CHECKPOINT_DIR,
        )
    return arguments


def start_training_job(session: boto3.Session, options: JobOptions, source_uri: str) -> TrainingJob:
    """Create the training job (CreateTrainingJob) and return it as SageMaker describes it."""
    from sagemaker.core.resources import TrainingJob

    return TrainingJob.create(
        **training_job_arguments(options, source_uri), session=session, region=options.region
    )


def final_metrics(job: TrainingJob) -> dict[str, float]:
    """The job's latest metric values under the entry point's names (``val_accuracy``, ...)."""
    metrics = job.final_metric_data_list or []
    return {METRIC_KEYS.get(m.metric_name, m.metric_name): m.value for m in metrics}


def _progress_text(job: TrainingJob) -> str:
    values = " ".join(f"{name}={value:.4g}" for name, value in final_metrics(job).items())
    return " ".join(
        part for part in (job.training_job_status, "/", job.secondary_status, values) if part
    )


def wait_for_job(
    job: TrainingJob,
    poll_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> TrainingJob:
    """Refresh the job until it ends, showing its status and metrics; fail unless it completed.

    Not ``TrainingJob.wait``: that shows the primary status only and returns quietly from a
    stopped job (``MaxRuntimeExceeded``, or ``MaxWaitTimeExceeded`` waiting for spot capacity).
    """
    with tqdm(
        desc=f"training job {job.training_job_name}", bar_format="{desc}: {postfix} [{elapsed}]"
    ) as progress:
        while True:
            progress.set_postfix_str(_progress_text(job))
            if job.training_job_status in TERMINAL_STATUSES:
                break
            sleep(poll_seconds)
            job.refresh()
    if job.training_job_status != "Completed":
        reason = " ".join(str(job.failure_reason or job.secondary_status or "").split())
        raise CloudError(
            f"training job {job.training_job_name} ended {job.training_job_status}: "
            f"{reason or 'no reason given'}"
        )
    return job


def model_artifact(job: TrainingJob) -> str:
    """The ``s3://.../model.tar.gz`` URI that the completed job wrote."""
    artifacts = job.model_artifacts
    uri = artifacts.s3_model_artifacts if artifacts else None
    if not uri:
        raise CloudError(f"training job {job.training_job_name} completed without a model")
    return str(uri)


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise CloudError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key
