"""The drift monitor's baseline, uploaded from beside the model record to DRIFT_BASELINE_KEY.

Training writes the file (``DRIFT_BASELINE_FILE`` in the record's folder,
training/drift_baseline.py); synth reads it as JSON and uploads that JSON (serialized again by
CDK's ``Source.json_data``); only the monitor validates it. Without a readable file, synth
warns and uploads nothing: the monitor then fails with BaselineNotFound (and its errors alarm
says so). Like the other monitoring pieces, the upload goes to the scope given, under the IDs
first deployed.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Annotations, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from stacks.names import DRIFT_BASELINE_KEY


def upload_baseline(
    scope: Construct,
    *,
    baseline: Path,
    bucket: s3.IBucket,
    encryption_key: kms.IKey,
    log_retention: logs.RetentionDays,
) -> s3_deployment.BucketDeployment | None:
    """The upload of the file at ``baseline``; None, with a warning, when it is unreadable."""
    try:
        content = json.loads(baseline.read_text())
    except (OSError, ValueError) as error:
        Annotations.of(scope).add_warning_v2(
            "scones:drift-baseline",
            f"no drift baseline uploaded ({error}); the drift monitor fails with "
            "BaselineNotFound until a record from the current training/train.py is deployed "
            "(or `python -m training.drift_baseline RECORD` writes one beside the record)",
        )
        return None
    folder, _, name = DRIFT_BASELINE_KEY.rpartition("/")
    return s3_deployment.BucketDeployment(
        scope,
        "DriftBaseline",
        sources=[s3_deployment.Source.json_data(name, content)],
        destination_bucket=bucket,
        destination_key_prefix=f"{folder}/",
        # Only the baseline's own folder, and never the reports: no pruning.
        prune=False,
        retain_on_delete=False,
        log_group=logs.LogGroup(
            scope,
            "DriftBaselineUploadLogs",
            retention=log_retention,
            encryption_key=encryption_key,
            removal_policy=RemovalPolicy.DESTROY,
        ),
    )
