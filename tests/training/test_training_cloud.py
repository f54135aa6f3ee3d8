"""Cloud mode: the exact CreateTrainingJob request that sagemaker-core sends (moto), the whole
launch with the SDK's SageMaker client stubbed, the wait and its failures, the images, the
one-line failure without credentials, and the SDK kept out of the local mode and the CDK app."""

from __future__ import annotations

import copy
import datetime
import json
import os
import socket
import subprocess
import sys
import tarfile
import time

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from training import cloud, train
from training.framework import LOCAL_INFERENCE_IMAGE
from training.record import read_record

BUCKET = "scones-data-123"
ROLE = "arn:aws:iam::123456789012:role/scones-training"
JOB = "scones-classifier-test"
JOB_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB}"
SOURCE_URI = f"s3://{BUCKET}/models/{JOB}/source/sourcedir.tar.gz"
TRAINING_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6.0-cpu-py312"
ARTIFACT_KEY = f"models/{JOB}/output/model.tar.gz"
METRICS = [
    {"Name": "train:loss", "Regex": "train_loss=([0-9.]+)"},
    {"Name": "validation:loss", "Regex": "val_loss=([0-9.]+)"},
    {"Name": "validation:accuracy", "Regex": "val_accuracy=([0-9.]+)"},
    {"Name": "test:accuracy", "Regex": "test_accuracy=([0-9.]+)"},
]
LAUNCH_ARGUMENTS = ["--epochs", "2", "--job-name", JOB, "--poll-seconds", "0"]


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


def job_options(spot: bool) -> cloud.JobOptions:
    return cloud.JobOptions(
        job_name=JOB,
        region="us-east-1",
        bucket=BUCKET,
        role_arn=ROLE,
        image_uri=TRAINING_IMAGE,
        spot=spot,
        hyperparameters={"seed": 0, "epochs": 2},
    )


def capture_create_requests(session: boto3.Session) -> list[dict]:
    """The parameters of every CreateTrainingJob call of the clients this session makes."""
    requests: list[dict] = []
    session.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob",
        lambda params, **_: requests.append(copy.deepcopy(params)),
    )
    return requests


def sdk_client(session: boto3.Session):
    """The SageMaker client sagemaker-core uses for this session and region (it caches it)."""
    from sagemaker.core.resources import Base

    return Base.get_sagemaker_client(session=session, region_name="us-east-1")


def description(status: str, secondary: str, **fields) -> dict:
    """A DescribeTrainingJob response."""
    return {
        "TrainingJobName": JOB,
        "TrainingJobArn": JOB_ARN,
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": datetime.datetime(2026, 1, 1),
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/{ARTIFACT_KEY}"},
        **fields,
    }


def metric(name: str, value: float) -> dict:
    return {"MetricName": name, "Value": value, "Timestamp": datetime.datetime(2026, 1, 1)}


def prepare_account(model_dir, tmp_path, artifact_key: str = ARTIFACT_KEY):
    """Moto's S3 bucket and SSM parameters as the storage stack leaves them, plus an artifact."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/scones-unlimited/data-bucket-name", Value=BUCKET, Type="String")
    ssm.put_parameter(
        Name="/scones-unlimited/sagemaker-training-role-arn", Value=ROLE, Type="String"
    )
    archive = tmp_path / "job-model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(model_dir).as_posix())
    s3.upload_file(str(archive), BUCKET, artifact_key)
    return s3


@pytest.mark.parametrize("spot", [False, True])
@mock_aws
def test_sdk_sends_the_exact_create_training_job_request(spot):
    session = boto3.Session(region_name="us-east-1")
    requests = capture_create_requests(session)

    job = cloud.start_training_job(session, job_options(spot), SOURCE_URI)

    assert requests == [expected_request(spot)]
    assert job.training_job_name == JOB
    assert job.enable_managed_spot_training is spot


@mock_aws
def test_cloud_mode_launches_waits_evaluates_and_writes_record(
    make_archive, model_dir, tmp_path, capsys
):
    s3 = prepare_account(model_dir, tmp_path)
    session = boto3.Session(region_name="us-east-1")
    stubber = Stubber(sdk_client(session))
    stubber.add_response(
        "create_training_job", {"TrainingJobArn": JOB_ARN}, expected_request(spot=True)
    )
    for status, secondary, fields in [
        ("InProgress", "Starting", {}),
        ("InProgress", "Training", {"FinalMetricDataList": [metric("validation:accuracy", 0.9)]}),
        (
            "Completed",
            "Completed",
            {
                "TrainingTimeInSeconds": 321,
                "FinalMetricDataList": [
                    metric("validation:accuracy", 0.94),
                    metric("train:loss", 0.21),
                ],
            },
        ),
    ]:
        stubber.add_response(
            "describe_training_job",
            description(status, secondary, **fields),
            {"TrainingJobName": JOB},
        )

    output = tmp_path / "out"
    with stubber:
        code = train.main(
            ["--archive", str(make_archive()), "--output", str(output), "--spot"]
            + LAUNCH_ARGUMENTS,
            session=session,
        )
        stubber.assert_no_pending_responses()

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "InProgress / Starting" in captured.err
    assert "InProgress / Training val_accuracy=0.9" in captured.err
    assert "Completed / Completed val_accuracy=0.94 train_loss=0.21" in captured.err
    record_path = output / "model-record.json"
    assert captured.out.strip().splitlines()[-1] == (
        f"next: npx cdk deploy --all -c model_record={record_path}"
    )
    record = read_record(record_path)
    assert record["model_data_url"] == f"s3://{BUCKET}/{ARTIFACT_KEY}"
    assert record["training_job_name"] == JOB
    assert record["image_uri"] == TRAINING_IMAGE.replace("training", "inference")
    assert (record["framework_version"], record["py_version"]) == ("2.6.0", "py312")
    assert record["metrics"]["val_accuracy"] == 0.94
    assert record["metrics"]["train_loss"] == 0.21
    assert record["metrics"]["train_seconds"] == 321
    assert record["evaluation"]["test_size"] == 12
    assert json.loads((output / "metrics.json").read_text()) == {
        "val_accuracy": 0.94,
        "train_loss": 0.21,
    }

    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert sum(key.startswith("data/train/") for key in keys) == 24
    assert sum(key.startswith("data/test/") for key in keys) == 12
    source = tmp_path / "source.tar.gz"
    s3.download_file(BUCKET, f"models/{JOB}/source/sourcedir.tar.gz", str(source))
    with tarfile.open(source) as tar:
        modules = [p.name for p in cloud.MODEL_SOURCE_DIR.glob("*.py")]
        assert sorted(tar.getnames()) == sorted([*modules, "photo-expert.pth"])
        assert tar.getmember("photo-expert.pth").size > 10_000_000  # the expert's ImageNet weights


@mock_aws
def test_cloud_mode_runs_against_moto_sagemaker(make_archive, model_dir, tmp_path, capsys):
    """No stub: moto's SageMaker accepts the request and names the artifact the job wrote."""
    prepare_account(model_dir, tmp_path)
    session = boto3.Session(region_name="us-east-1")
    requests = capture_create_requests(session)

    code = train.main(
        ["--archive", str(make_archive()), "--output", str(tmp_path / "out")] + LAUNCH_ARGUMENTS,
        session=session,
    )

    assert code == 0, capsys.readouterr().err
    assert requests == [expected_request(spot=False)]
    record = read_record(tmp_path / "out" / "model-record.json")
    assert record["model_data_url"] == f"s3://{BUCKET}/{ARTIFACT_KEY}"


@pytest.mark.parametrize(
    ("status", "secondary", "reason", "message"),
    [
        (
            "Failed",
            "Failed",
            "AlgorithmError: out of memory\nTraceback (most recent call last):\n  ...",
            f"training job {JOB} ended Failed: AlgorithmError: out of memory "
            "Traceback (most recent call last): ...",
        ),
        (
            "Stopped",
            "MaxWaitTimeExceeded",
            None,
            f"training job {JOB} ended Stopped: MaxWaitTimeExceeded",
        ),
    ],
)
def test_a_job_that_does_not_complete_is_one_line(status, secondary, reason, message):
    from sagemaker.core.resources import TrainingJob

    session = boto3.Session(region_name="us-east-1")
    stubber = Stubber(sdk_client(session))
    stubber.add_response("describe_training_job", description("InProgress", "Training"))
    ended = {"FailureReason": reason} if reason else {}
    stubber.add_response("describe_training_job", description(status, secondary, **ended))
    sleeps: list[float] = []
    with stubber:
        job = TrainingJob.get(training_job_name=JOB, session=session, region="us-east-1")
        with pytest.raises(cloud.CloudError) as raised:
            cloud.wait_for_job(job, poll_seconds=7, sleep=sleeps.append)
        stubber.assert_no_pending_responses()
    assert str(raised.value) == message
    assert sleeps == [7]


def test_images_come_from_the_sdk_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("image_uris.retrieve went to the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert cloud.pytorch_image_uri("us-east-1", "training", "ml.m5.large") == TRAINING_IMAGE
    assert cloud.pytorch_image_uri("us-east-1", "inference", "ml.m5.large") == (
        LOCAL_INFERENCE_IMAGE
    )
    assert cloud.pytorch_image_uri("eu-west-1", "inference", "ml.g5.xlarge") == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6.0-gpu-py312"
    )
    assert cloud.pytorch_image_uri("cn-north-1", "inference", "ml.c5.large").startswith(
        "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/pytorch-inference:"
    )
    with pytest.raises(cloud.CloudError) as raised:
        cloud.pytorch_image_uri("me-west-1", "training", "ml.m5.large")
    assert str(raised.value) == (
        "no PyTorch 2.6.0 training image for ml.m5.large in me-west-1 "
        "(Unsupported region: me-west-1); pass --image-uri"
    )
    with pytest.raises(cloud.CloudError, match=r"in us-east-1 .*; pass --inference-image-uri$"):
        cloud.pytorch_image_uri("us-east-1", "inference", "ml.inf2.xlarge")


@mock_aws
def test_missing_stack_parameters_say_to_deploy_the_storage_stack(tmp_path, capsys):
    code = train.main(
        ["--output", str(tmp_path), "--ssm-prefix", "/other"],
        session=boto3.Session(region_name="us-east-1"),
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


def test_local_mode_and_the_cdk_app_never_import_the_sdk(make_archive, tmp_path):
    """With ``sagemaker`` made unimportable, the app and a whole local run still work."""
    script = f"""
import sys
sys.modules["sagemaker"] = None
import app
from training import train
code = train.main([
    "--local", "--archive", {str(make_archive())!r}, "--output", {str(tmp_path / "out")!r},
    "--epochs", "1", "--num-threads", "1", "--hyperparameter", "architecture=cnn3",
    "--hyperparameter", "width=8", "--hyperparameter", "batch-size=8",
])
print("sagemaker modules:", sorted(m for m in sys.modules if m.startswith("sagemaker.")))
sys.exit(code)
"""
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=train.REPO_ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    assert "sagemaker modules: []" in completed.stdout.splitlines()
    assert read_record(tmp_path / "out" / "model-record.json")["image_uri"] == (
        LOCAL_INFERENCE_IMAGE
    )


def test_hyperparameter_option_parses_json_values():
    args = train.build_parser().parse_args(
        ["--hyperparameter", "learning-rate=0.02", "--hyperparameter", "architecture=cnn3"]
    )
    assert dict(args.hyperparameter) == {"learning-rate": 0.02, "architecture": "cnn3"}
    assert (
        json.loads(cloud.encode_hyperparameters(dict(args.hyperparameter))["architecture"])
        == "cnn3"
    )
