"""A Python Lambda function bundled on this machine with pip, never in Docker."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import jsii
from aws_cdk import (
    AssetHashType,
    BundlingOptions,
    Duration,
    ILocalBundling,
    RemovalPolicy,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.constructs.bundle_install import pip_install_command

RUNTIME = lambda_.Runtime.PYTHON_3_12
# Lambda's Python 3.12 runtime runs on Amazon Linux 2023 (glibc 2.34): these wheels load there.
WHEEL_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEPENDENCY_CACHE = REPO_ROOT / "build" / "lambda-deps"
SOURCE_EXCLUDES = ("__pycache__", "*.pyc", "requirements.txt")


class BundlingError(RuntimeError):
    """pip could not install a function's requirements for the Lambda platform."""


def _link_or_copy(source: str, destination: str) -> None:
    """Hard-link a cached dependency file into a bundle; copy it across file systems.

    Nothing writes to bundle files after bundling, so sharing them with the cache is safe,
    and a synth then costs no copying of the dependencies.
    """
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Bundles a function folder: its requirements for arm64 Lambda, then its source files.

    The installed requirements are cached under build/lambda-deps by the hash of the
    requirements file, so a synth after the first copies files and runs no pip.
    """

    def __init__(self, source_dir: Path) -> None:
        self._source_dir = source_dir

    def try_bundle(self, output_dir: str, *_options: object, **_kwargs: object) -> bool:
        requirements = self._source_dir / "requirements.txt"
        if requirements.is_file():
            shutil.copytree(
                self._dependencies(requirements),
                output_dir,
                dirs_exist_ok=True,
                copy_function=_link_or_copy,
            )
        shutil.copytree(
            self._source_dir,
            output_dir,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(*SOURCE_EXCLUDES),
        )
        return True

    @staticmethod
    def _dependencies(requirements: Path) -> Path:
        key = hashlib.sha256(
            requirements.read_bytes() + RUNTIME.name.encode() + " ".join(WHEEL_PLATFORMS).encode()
        ).hexdigest()[:16]
        cached = DEPENDENCY_CACHE / key
        if cached.is_dir():
            return cached
        DEPENDENCY_CACHE.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=DEPENDENCY_CACHE))
        platforms = [arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)]
        command = pip_install_command(
            staging,
            "--implementation",
            "cp",
            "--python-version",
            RUNTIME.name.removeprefix("python"),
            *platforms,
            "--requirement",
            str(requirements),
        )
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise BundlingError(
                f"pip could not install {requirements} for {RUNTIME.name} on arm64 "
                f"(is PyPI reachable?):\n{result.stderr.strip()}"
            )
        try:
            staging.rename(cached)
        except OSError:  # another synth cached the same requirements first
            shutil.rmtree(staging, ignore_errors=True)
        return cached


class PythonLambda(Construct):
    """A Powertools-instrumented Python 3.12 arm64 function from one `lambda_src/` folder.

    Tracing is active, logs go to a log group this construct owns (encrypted with
    ``log_encryption_key``, deleted with the stack), and the handler is
    `handler.lambda_handler`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source_dir: Path,
        service_name: str,
        metrics_namespace: str,
        log_retention: logs.RetentionDays,
        log_encryption_key: kms.IKey,
        environment: dict[str, str] | None = None,
        timeout_seconds: int = 30,
        memory_size: int = 512,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if not (source_dir / "handler.py").is_file():
            raise FileNotFoundError(f"{source_dir} has no handler.py")
        self.service_name = service_name
        self.metrics_namespace = metrics_namespace
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            encryption_key=log_encryption_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Our own role: logs go only to this function's group (no AWS managed policy).
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler="handler.lambda_handler",
            code=lambda_.Code.from_asset(
                str(source_dir),
                asset_hash_type=AssetHashType.SOURCE,
                exclude=["__pycache__", "*.pyc"],
                bundling=BundlingOptions(
                    image=RUNTIME.bundling_image, local=PipLocalBundling(source_dir)
                ),
            ),
            environment={
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **(environment or {}),
            },
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            role=self.role,
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_size,
            reserved_concurrent_executions=reserved_concurrency,
        )

    def powertools_metric(
        self, metric_name: str, *, statistic: str, period: Duration, label: str | None = None
    ) -> cloudwatch.Metric:
        """A metric the handler publishes with Powertools Metrics (EMF).

        Powertools adds one dimension, ``service``, set from POWERTOOLS_SERVICE_NAME.
        """
        return cloudwatch.Metric(
            namespace=self.metrics_namespace,
            metric_name=metric_name,
            dimensions_map={"service": self.service_name},
            statistic=statistic,
            period=period,
            label=label,
        )
