"""Cloud mode: the exact CreateTrainingJob request, the whole launch under moto + Stubber,
image URIs, and the one-line failure without credentials."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tarfile
import time

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from training import cloud, train
from training.image_uris import UnsupportedImageRequest, pytorch_image_uri
from training.record import read_record

BUCKET = "scones-data-123"
ROLE = "arn:aws:iam::123456789012:role/scones-training"
JOB = "scones-classifier-test"
SOURCE_URI = f"s3://{BUCKET}/models/{JOB}/source/sourcedir.tar.gz"
TRAINING_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6.0-cpu-py312"
METRICS = [
    {"Name": "train:loss", "Regex": "train_loss=([0-9.]+)"},
    {"Name": "validation:loss", "Regex": "val_loss=([0-9.]+)"},
    {"Name": "validation:accuracy", "Regex": "val_accuracy=([0-9.]+)"},
    {"Name": "test:accuracy", "Regex": "test_accuracy=([0-9.]+)"},
]


def expected_request(spot: bool) -> dict:
    hyperparameters = {"seed": "0", "epochs": "2"}
    if spot:
        hyperparameters["checkpoint-dir"] = '"/opt/ml/checkpoints"'
    hyperparameters.update(
        {
            "sagemaker_program": '"train_model.py"',
            "sagemaker_submit_directory": f'"{SOURCE_URI}"',
            "sagemaker_region": '"us-east-1"',
        }
    )
    request = {
        "TrainingJobName": JOB,
        "AlgorithmSpecification": {
            "TrainingImage": TRAINING_IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": METRICS,
        },
        "RoleArn": ROLE,
        "HyperParameters": hyperparameters,
        "InputDataConfig": [
            {
                "ChannelName": split,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{BUCKET}/data/{split}/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "image/png",
            }
            for split in ("train", "test")
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "EnableManagedSpotTraining": spot,
        "Tags": [{"Key": "project", "Value": "scones-unlimited"}],
    }
    if spot:
        request["StoppingCondition"]["MaxWaitTimeInSeconds"] = 7200
        request["CheckpointConfig"] = {
            "S3Uri": f"s3://{BUCKET}/checkpoints/{JOB}/",
            "LocalPath": "/opt/ml/checkpoints",
        }
    return request


@pytest.mark.parametrize("spot", [False, True])
def test_training_job_request_is_exact(spot):
    options = cloud.JobOptions(
        job_name=JOB,
        region="us-east-1",
        bucket=BUCKET,
        role_arn=ROLE,
        spot=spot,
        hyperparameters={"seed": 0, "epochs": 2},
    )
    assert cloud.build_training_job_request(options, SOURCE_URI) == expected_request(spot)


def test_image_uris_follow_region_partition_and_processor():
    assert pytorch_image_uri("eu-west-1", "inference", "ml.m5.large") == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"
    )
    assert pytorch_image_uri("af-south-1", "training", "ml.g5.xlarge") == (
        "626614931356.dkr.ecr.af-south-1.amazonaws.com/pytorch-training:2.6.0-gpu-py312"
    )
    assert pytorch_image_uri("cn-north-1", "inference", "ml.c5.large").startswith(
        "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/"
    )
    assert pytorch_image_uri("me-west-1", "inference", "ml.m5.large")
    with pytest.raises(UnsupportedImageRequest, match="me-west-1"):
        pytorch_image_uri("me-west-1", "training", "ml.m5.large")
    with pytest.raises(UnsupportedImageRequest, match="Neuron"):
        pytorch_image_uri("us-east-1", "inference", "ml.inf2.xlarge")


class MotoSession:
    """A boto3 session whose SageMaker client is stubbed; S3 and SSM are moto's."""

    def __init__(self, sagemaker_client):
        self._session = boto3.Session(region_name="us-east-1")
        self.region_name = "us-east-1"
        self._sagemaker = sagemaker_client

    def get_credentials(self):
        return self._session.get_credentials()

    def client(self, name):
        return self._sagemaker if name == "sagemaker" else self._session.client(name)


def put_stack_parameters(prefix="/scones-unlimited"):
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name=f"{prefix}/data-bucket-name", Value=BUCKET, Type="String")
    ssm.put_parameter(Name=f"{prefix}/sagemaker-training-role-arn", Value=ROLE, Type="String")


def packed_model(model_dir, tmp_path):
    archive = tmp_path / "job-model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(model_dir).as_posix())
    return archive


@mock_aws
def test_cloud_mode_launches_waits_evaluates_and_writes_record(
    make_archive, model_dir, tmp_path, capsys
):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    put_stack_parameters()
    artifact_key = f"models/{JOB}/output/model.tar.gz"
    s3.upload_file(str(packed_model(model_dir, tmp_path)), BUCKET, artifact_key)

    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    stubber = Stubber(sagemaker)
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB}"
    stubber.add_response(
        "create_training_job", {"TrainingJobArn": arn}, expected_params=expected_request(spot=True)
    )
    base = {
        "TrainingJobName": JOB,
        "TrainingJobArn": arn,
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": datetime.datetime(2026, 1, 1),
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/{artifact_key}"},
    }
    stubber.add_response(
        "describe_training_job",
        {
            **base,
            "TrainingJobStatus": "InProgress",
            "SecondaryStatus": "Training",
        },
        expected_params={"TrainingJobName": JOB},
    )
    stubber.add_response(
        "describe_training_job",
        {
            **base,
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "TrainingTimeInSeconds": 321,
            "FinalMetricDataList": [
                {
                    "MetricName": "validation:accuracy",
                    "Value": 0.94,
                    "Timestamp": datetime.datetime(2026, 1, 1),
                },
            ],
        },
        expected_params={"TrainingJobName": JOB},
    )

    output = tmp_path / "out"
    with stubber:
        code = train.main(
            [
                "--archive",
                str(make_archive()),
                "--output",
                str(output),
                "--spot",
                "--epochs",
                "2",
                "--job-name",
                JOB,
                "--poll-seconds",
                "0",
            ],
            session=MotoSession(sagemaker),
        )
        stubber.assert_no_pending_responses()

    captured = capsys.readouterr()
    assert code == 0, captured.err
    record_path = output / "model-record.json"
    assert captured.out.strip().splitlines()[-1] == (
        f"next: npx cdk deploy --all -c model_record={record_path}"
    )
    record = read_record(record_path)
    assert record["model_data_url"] == f"s3://{BUCKET}/{artifact_key}"
    assert record["training_job_name"] == JOB
    assert record["image_uri"] == TRAINING_IMAGE.replace("training", "inference")
    assert record["metrics"]["val_accuracy"] == 0.94
    assert record["metrics"]["train_seconds"] == 321
    assert record["evaluation"]["test_size"] == 12

    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert f"models/{JOB}/source/sourcedir.tar.gz" in keys
    assert sum(key.startswith("data/train/") for key in keys) == 24
    assert sum(key.startswith("data/test/") for key in keys) == 12
    source = tmp_path / "source.tar.gz"
    s3.download_file(BUCKET, f"models/{JOB}/source/sourcedir.tar.gz", str(source))
    with tarfile.open(source) as tar:
        assert sorted(tar.getnames()) == ["inference.py", "network.py", "train_model.py"]


@mock_aws
def test_failed_job_is_reported_in_one_line(tmp_path, capsys):
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    stubber = Stubber(sagemaker)
    stubber.add_response(
        "describe_training_job",
        {
            "TrainingJobName": JOB,
            "TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:x/y",
            "TrainingJobStatus": "Failed",
            "SecondaryStatus": "Failed",
            "FailureReason": "AlgorithmError: out of memory",
            "AlgorithmSpecification": {"TrainingInputMode": "File"},
            "ResourceConfig": {
                "InstanceType": "ml.m5.large",
                "InstanceCount": 1,
                "VolumeSizeInGB": 10,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "CreationTime": datetime.datetime(2026, 1, 1),
            "ModelArtifacts": {"S3ModelArtifacts": "s3://b/k"},
        },
    )
    with stubber, pytest.raises(cloud.CloudError, match="ended Failed: AlgorithmError"):
        cloud.wait_for_job(sagemaker, JOB, poll_seconds=0)


@mock_aws
def test_missing_stack_parameters_say_to_deploy_the_storage_stack(tmp_path, capsys):
    code = train.main(
        ["--output", str(tmp_path), "--ssm-prefix", "/other"],
        session=MotoSession(boto3.client("sagemaker", region_name="us-east-1")),
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(error) == 1
    assert "/other/data-bucket-name" in error[0] and "deploy the storage stack" in error[0]


def test_no_credentials_fail_fast_in_one_line(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        {
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_REGION": "us-east-1",
            "HOME": str(tmp_path),
        }
    )
    started = time.perf_counter()
    completed = subprocess.run(
        [
            sys.executable,
            str(train.REPO_ROOT / "training" / "train.py"),
            "--output",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    elapsed = time.perf_counter() - started
    assert completed.returncode == 1
    assert completed.stderr.strip().splitlines() == [
        "error: no AWS credentials found: configure a profile (aws configure, AWS_PROFILE) or "
        "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; or train locally with --local"
    ]
    assert "Traceback" not in completed.stdout
    assert elapsed < 20
    assert not (tmp_path / "out").exists()


def test_hyperparameter_option_parses_json_values():
    args = train.build_parser().parse_args(
        ["--hyperparameter", "learning-rate=0.02", "--hyperparameter", "architecture=cnn3"]
    )
    assert dict(args.hyperparameter) == {"learning-rate": 0.02, "architecture": "cnn3"}
    assert (
        json.loads(cloud.encode_hyperparameters(dict(args.hyperparameter))["architecture"])
        == "cnn3"
    )
