"""The project's customer managed KMS keys, all made the same way."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from constructs import Construct


def project_key(scope: Construct, construct_id: str, *, description: str) -> kms.Key:
    """A key rotated yearly and deleted with its stack after the 7-day minimum wait."""
    return kms.Key(
        scope,
        construct_id,
        description=description,
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.DESTROY,
        pending_window=Duration.days(7),
    )
