"""Train the bicycle/motorcycle classifier and write the model record the endpoint reads.

    python training/train.py --local --archive PATH --output DIR   # CPU, in-process
    python training/train.py [--archive PATH] [--spot]              # SageMaker training job
    python training/train.py --local [--archive PATH] --images DIR  # with your own photos

Both modes stage the CIFAR-100 archive (and with ``--images`` a user's labelled photos,
DIR/<label>/*, a stratified part of them held out; without ``--archive`` the photos alone),
run the same entry point (``training/model/train_model.py``), evaluate ``model.tar.gz``
through its own inference handlers on the test split (and the held-out photos, scored
separately) and write ``model-record.json`` and, beside it, the drift monitor's baseline
(``drift-baseline.json``, training/drift_baseline.py).
"""

# ruff: noqa: E402  (the environment and sys.path are set before the imports they affect)
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: 2-4x faster on 2 cores

import argparse
import datetime
import json
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: make the `training` package importable
    sys.path.insert(0, str(REPO_ROOT))

from training import cloud, stage_data, stage_photos
from training.drift_baseline import write_baseline
from training.framework import FRAMEWORK_VERSION, LOCAL_INFERENCE_IMAGE
from training.record import (
    DEFAULT_DIR,
    RECORD_NAME,
    ModelRecordError,
    archive_class_names,
    build_record,
    write_record,
)

DEFAULT_OUTPUT = DEFAULT_DIR
DEFAULT_ENDPOINT_INSTANCE = "ml.m5.large"
MODEL_ARCHIVE = "model.tar.gz"


def _job_name(prefix: str) -> str:
    return f"{prefix}-{datetime.datetime.now(datetime.UTC):%Y%m%d-%H%M%S}"


def entry_point_module():
    """Import ``train_model`` the way the training container does: from its own folder."""
    from training.evaluate import import_from_folder

    return import_from_folder(cloud.MODEL_SOURCE_DIR, "train_model")


def hyperparameter_arguments(epochs: int | None, seed: int, extra: dict[str, Any]) -> list[str]:
    """Entry-point arguments: ``--name value`` for each hyperparameter that is set."""
    values: dict[str, Any] = {"seed": seed, **extra}
    if epochs is not None:
        values["epochs"] = epochs
    return [item for name, value in values.items() for item in (f"--{name}", str(value))]


def pack_model_dir(model_dir: Path, dest: Path) -> Path:
    """``model.tar.gz`` as SageMaker writes it: the files of the model folder at the top."""
    with tarfile.open(dest, "w:gz") as archive:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.add(path, arcname=path.relative_to(model_dir).as_posix())
    return dest


def _stage(
    archive: Path | None, data_dir: Path, skip_staging: bool, images: Path | None = None
) -> Path:
    """Stage into ``data_dir``: the archive (None: the official download, or with ``images``
    none: the photos alone), then the photos."""
    if skip_staging:
        if not (data_dir / "train").is_dir() or not (data_dir / "test").is_dir():
            raise stage_data.StagingError(f"--skip-staging: {data_dir} has no train/ and test/")
        return data_dir
    cifar_hashes = None
    if archive is not None or images is None:
        staged = stage_data.stage_local(
            data_dir, archive, download_dir=data_dir.parent / "downloads"
        )
        print(f"staged {staged.counts} under {staged.root}")
        cifar_hashes = stage_photos.manifest_hashes(staged.manifest)
    if images is not None:
        photos = stage_photos.stage_photos(images, data_dir, cifar_hashes)
        print(
            f"staged photos {photos.counts}: {photos.train} to train, {photos.held_out} held "
            f"out in {data_dir / stage_photos.PHOTOS_TEST}"
        )
    return data_dir


def evaluate_staged(model_archive: Path, data_root: Path, output: Path) -> dict:
    """The record's evaluation: the test split, and the held-out photos (if staged) under
    ``photos``, whose baseline is then the drift monitor's (traffic is photos like them)."""
    from training.evaluate import evaluate_artifact
    from training.evaluate_photos import evaluate_photo_folder

    evaluation = evaluate_artifact(model_archive, data_root / "test", output)
    photos_test = data_root / stage_photos.PHOTOS_TEST
    if (photos_test / stage_photos.MANIFEST_NAME).is_file():
        evaluation["photos"] = evaluate_photo_folder(model_archive, photos_test, output)
        evaluation["baseline"] = evaluation["photos"]["baseline"]
        evaluation["baseline_images"] = stage_photos.PHOTOS_TEST
    return evaluation


def train_local(
    archive: Path | None,
    output: Path = DEFAULT_OUTPUT,
    epochs: int | None = None,
    seed: int = 0,
    data_dir: Path | None = None,
    skip_staging: bool = False,
    hyperparameters: dict[str, Any] | None = None,
    num_threads: int | None = None,
    images: Path | None = None,
) -> Path:
    """Stage, train on CPU in-process, pack, evaluate; return the written record's path.

    ``archive`` None downloads the official archive (with ``images``: the photos alone).
    ``epochs`` None keeps the recipe's default. Staged images go to ``data_dir`` (default
    ``<output>/data``).
    """
    output = output.resolve()
    data_root = _stage(archive, (data_dir or output / "data").resolve(), skip_staging, images)
    entry = entry_point_module()
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="scones-model-") as model_dir:
        arguments = hyperparameter_arguments(epochs, seed, hyperparameters or {})
        if num_threads:
            arguments += ["--num-threads", str(num_threads)]
        hp, paths, threads = entry.parse_args(
            arguments
            + [
                "--train-dir",
                str(data_root / "train"),
                "--test-dir",
                str(data_root / "test"),
                "--model-dir",
                model_dir,
                "--output-data-dir",
                str(output),
            ]
        )
        try:
            metrics = entry.train(hp, paths, threads)
        except entry.TrainingDataError as error:
            raise stage_data.StagingError(str(error)) from error
        model_archive = pack_model_dir(Path(model_dir), output / MODEL_ARCHIVE)
    evaluation = evaluate_staged(model_archive, data_root, output)
    record = build_record(
        model_data_url=str(model_archive),
        image_uri=LOCAL_INFERENCE_IMAGE,
        class_names=archive_class_names(model_archive),
        metrics=metrics,
        training_job_name=_job_name("local"),
        evaluation=evaluation,
    )
    record_path = write_record(output / RECORD_NAME, record)
    write_baseline(record_path, record)  # the drift monitor's, beside the record
    return record_path


def train_cloud(args: argparse.Namespace, session: Any | None = None) -> Path:
    """Stage to S3, run the SageMaker training job, evaluate its artifact, write the record.

    ``session`` is a boto3 session (default: one for ``--region``); sagemaker-core makes its
    SageMaker client from it.
    """
    cloud.limit_metadata_wait()
    if session is None:
        import boto3

        session = boto3.Session(region_name=args.region)
    region = cloud.check_session(session)
    s3 = session.client("s3")
    bucket, role_arn = cloud.read_stack_parameters(session.client("ssm"), args.ssm_prefix)
    training_image = args.image_uri or cloud.pytorch_image_uri(
        region, "training", args.instance_type
    )
    inference_image = args.inference_image_uri or cloud.pytorch_image_uri(
        region, "inference", args.endpoint_instance_type
    )
    output = args.output.resolve()
    data_root = _stage(
        args.archive, (args.data_dir or output / "data").resolve(), args.skip_staging, args.images
    )
    if not args.skip_staging:
        report = stage_data.upload_folder(data_root, bucket, cloud.DATA_PREFIX, s3)
        print(f"uploaded {report.uploaded} file(s), {report.unchanged} already there unchanged")
    job_name = args.job_name or _job_name("scones-classifier")
    values: dict[str, Any] = {"seed": args.seed, **dict(args.hyperparameter)}
    if args.epochs is not None:
        values["epochs"] = args.epochs
    options = cloud.JobOptions(
        job_name=job_name,
        region=region,
        bucket=bucket,
        role_arn=role_arn,
        image_uri=training_image,
        instance_type=args.instance_type,
        max_runtime_seconds=args.max_runtime,
        spot=args.spot,
        max_wait_seconds=args.max_wait,
        hyperparameters=values,
    )
    with tempfile.TemporaryDirectory(prefix="scones-source-") as workdir:
        source_uri = cloud.upload_source(s3, bucket, job_name, Path(workdir))
    job = cloud.start_training_job(session, options, source_uri)
    print(f"started training job {job_name} in {region}")
    job = cloud.wait_for_job(job, args.poll_seconds)
    model_url = cloud.model_artifact(job)
    output.mkdir(parents=True, exist_ok=True)
    model_archive = output / MODEL_ARCHIVE
    s3.download_file(*cloud.split_s3_uri(model_url), str(model_archive))
    evaluation = evaluate_staged(model_archive, data_root, output)
    metrics = cloud.final_metrics(job)
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2))
    record = build_record(
        model_data_url=model_url,
        image_uri=inference_image,
        class_names=archive_class_names(model_archive),
        metrics={
            **metrics,
            "test_accuracy": evaluation["accuracy"],
            "test_size": evaluation["test_size"],
            "train_seconds": job.training_time_in_seconds or None,
        },
        training_job_name=job_name,
        evaluation=evaluation,
    )
    record_path = write_record(output / RECORD_NAME, record)
    write_baseline(record_path, record)  # the drift monitor's, beside the record
    return record_path


def parse_hyperparameter(text: str) -> tuple[str, Any]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def add_hyperparameter_option(
    parser: argparse.ArgumentParser, flag: str = "--hyperparameter", **options: Any
) -> None:
    """A repeatable ``NAME=VALUE`` option that collects entry-point hyperparameters."""
    options.setdefault("default", [])
    parser.add_argument(
        flag, type=parse_hyperparameter, action="append", metavar="NAME=VALUE", **options
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="train in this process on CPU instead of a SageMaker job",
    )
    parser.add_argument(
        "--archive",
        type=Path,
        help="CIFAR-100 python archive (official layout); default: download "
        "the official one and check its md5",
    )
    parser.add_argument(
        "--images",
        type=Path,
        help="your own labelled photos, DIR/<label>/* (labels: bicycle, motorcycle) or with "
        "a DIR/manifest.csv (file,label[,source]): checked, 20%% of each class held out and "
        "scored separately, the rest added to training; without --archive the photos alone",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="folder for model.tar.gz, metrics.json, plots and "
        "model-record.json (default: build/model under the repo root)",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="folder for the staged PNGs (default: OUTPUT/data)"
    )
    parser.add_argument(
        "--skip-staging",
        action="store_true",
        help="the data is already staged in --data-dir (and, in cloud mode, "
        "uploaded to s3://BUCKET/data/)",
    )
    parser.add_argument("--epochs", type=int, help="training epochs (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_hyperparameter_option(
        parser,
        help="any other entry-point option, e.g. learning-rate=0.02 "
        "(repeatable; see training/model/train_model.py --help)",
    )
    parser.add_argument("--num-threads", type=int, help="--local: torch threads (default: all)")
    cloud_options = parser.add_argument_group("SageMaker job (without --local)")
    cloud_options.add_argument("--region", help="AWS region (default: the configured one)")
    cloud_options.add_argument(
        "--ssm-prefix",
        default=cloud.DEFAULT_SSM_PREFIX,
        help=f"prefix of the storage stack's SSM parameters (default: {cloud.DEFAULT_SSM_PREFIX})",
    )
    cloud_options.add_argument(
        "--instance-type",
        default="ml.m5.large",
        help="training instance type (default: ml.m5.large)",
    )
    cloud_options.add_argument(
        "--spot",
        action="store_true",
        help="managed spot training, checkpoints in s3://BUCKET/checkpoints/",
    )
    cloud_options.add_argument(
        "--max-runtime",
        type=int,
        default=3600,
        help="seconds of training before SageMaker stops the job",
    )
    cloud_options.add_argument(
        "--max-wait",
        type=int,
        default=7200,
        help="--spot: seconds to wait for spot capacity plus training",
    )
    cloud_options.add_argument("--job-name", help="training job name (default: timestamped)")
    cloud_options.add_argument(
        "--image-uri",
        help=f"training image (default: the PyTorch {FRAMEWORK_VERSION} image for the region)",
    )
    cloud_options.add_argument(
        "--inference-image-uri",
        help=f"inference image for the record (default: the PyTorch {FRAMEWORK_VERSION} image)",
    )
    cloud_options.add_argument(
        "--endpoint-instance-type",
        default=DEFAULT_ENDPOINT_INSTANCE,
        help="picks the cpu or gpu inference image (default: ml.m5.large)",
    )
    cloud_options.add_argument(
        "--poll-seconds", type=float, default=30.0, help="seconds between job status checks"
    )
    return parser


def main(argv: list[str] | None = None, session: Any | None = None) -> int:
    args = build_parser().parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    from training.evaluate import EvaluationError

    try:
        if args.local:
            record_path = train_local(
                args.archive,
                args.output,
                args.epochs,
                args.seed,
                args.data_dir,
                args.skip_staging,
                dict(args.hyperparameter),
                args.num_threads,
                args.images,
            )
        else:
            record_path = train_cloud(args, session)
    except (cloud.CloudError, stage_data.StagingError, EvaluationError, ModelRecordError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(f"error: AWS call failed: {error}", file=sys.stderr)
        return 1
    print(f"model record: {record_path}")
    print(f"next: npx cdk deploy --all -c model_record={record_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
