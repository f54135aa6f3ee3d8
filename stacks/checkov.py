"""checkov skips in the template metadata, where checkov reads them, each with its reason.

checkov reads ``Metadata: {checkov: {skip: [{id, comment}]}}`` on a CloudFormation resource,
as cdk-nag reads its suppressions: every skip here names the check and why it does not apply.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import IConstruct

LAMBDA_FUNCTION = "AWS::Lambda::Function"
# The singletons CDK adds at stack level for its own custom resources (bucket auto-delete,
# bucket notifications, BucketDeployment): their construct ids start with these.
CDK_HANDLER_IDS = ("Custom", "BucketNotificationsHandler")
CDK_HANDLER_SKIPS = {
    "CKV_AWS_116": "A CDK-provided custom-resource handler: CloudFormation invokes it during "
    "deploy and destroy only and fails the stack operation when it fails; a DLQ would "
    "hold nothing anyone replays.",
    "CKV_AWS_115": "A CDK-provided custom-resource handler that runs a few times per deploy: "
    "reserving concurrency for it would only take from the account's unreserved pool.",
}
OUTSIDE_A_VPC = {
    "CKV_AWS_117": "Outside a VPC on purpose: the functions reach only S3, SageMaker Runtime, "
    "CloudWatch and X-Ray, over their public TLS endpoints with IAM-signed requests; a VPC "
    "would add NAT or per-service interface endpoints (cost, cold starts) without narrowing "
    "what the functions may do, which their roles already limit.",
}
PLAIN_ENVIRONMENT = {
    "CKV_AWS_173": "The environment holds names, prefixes and thresholds, no secrets (tested "
    "in tests/security/test_data_protection.py); Lambda encrypts it at rest with its AWS "
    "managed key, and a customer key would add KMS calls on every cold start for no gain.",
}


def skip_checks(
    scope: IConstruct, skips: Mapping[str, str], *, resource_type: str | None = None
) -> None:
    """Skip checkov checks (id -> reason) on ``scope``'s CloudFormation resource, or, with
    ``resource_type``, on every resource of that type in ``scope``'s tree."""
    if resource_type is None:
        targets = [scope if isinstance(scope, CfnResource) else scope.node.default_child]
    else:
        targets = [
            child
            for child in scope.node.find_all()
            if isinstance(child, CfnResource) and child.cfn_resource_type == resource_type
        ]
    for target in targets:
        if not isinstance(target, CfnResource):
            raise TypeError(f"{scope.node.path} has no CloudFormation resource to skip checks on")
        existing = (target.get_metadata("checkov") or {}).get("skip", [])
        added = [{"id": check, "comment": reason} for check, reason in skips.items()]
        target.add_metadata("checkov", {"skip": [*existing, *added]})


def skip_function_checks(stack: Stack) -> None:
    """The skips every function of ``stack`` shares, and those of CDK's own handlers."""
    skip_checks(stack, OUTSIDE_A_VPC, resource_type=LAMBDA_FUNCTION)
    for function in stack.node.find_all():
        if isinstance(function, lambda_.CfnFunction) and function.environment is not None:
            skip_checks(function, PLAIN_ENVIRONMENT)
    for child in stack.node.children:
        if child.node.id.startswith(CDK_HANDLER_IDS):
            skip_checks(child, CDK_HANDLER_SKIPS, resource_type=LAMBDA_FUNCTION)
