"""IAM over every synthesized template: no service-wide grants, wildcards only where AWS
requires them (each under a granular cdk-nag suppression that names it), and an endpoint
role that reads its model artifact and nothing else."""

import re

import pytest

from tests.security.policies import references, render, statements, suppressions

IDENTITY_POLICY_TYPES = {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role"}
# Actions with no resource-level permissions in IAM: "Resource": "*" is the only choice.
NO_RESOURCE_LEVEL = {
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
SERVICE_NAMES = {
    "xray": ("x-ray", "xray"),
    "logs": ("cloudwatch logs", "logs:"),
    "ecr": ("ecr",),
    "cloudwatch": ("cloudwatch",),
}
SERVICE_WIDE = re.compile(r"^(\*|[a-z0-9-]+:\*)$")
ACCOUNT_ROOT = "arn:<AWS::Partition>:iam::<AWS::AccountId>:root"


def is_key_policy_root_delegation(found):
    """AWS's default key policy statement: the account (not a user) may use IAM policies to
    allow use of the key. Without it a key can become unmanageable, so AWS requires it."""
    principal = found.statement.get("Principal", {})
    return (
        found.resource_type == "AWS::KMS::Key"
        and found.actions == ["kms:*"]
        and isinstance(principal, dict)
        and render(principal.get("AWS")) == ACCOUNT_ROOT
    )


def test_the_walk_reaches_every_kind_of_policy(templates):
    kinds = {found.resource_type for t in templates.values() for found in statements(t)}
    assert {
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::S3::BucketPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::KMS::Key",
    } <= kinds


def test_no_statement_allows_every_action_of_a_service(templates):
    broad = [
        (stack, found.logical_id, action)
        for (_, stack), template in templates.items()
        for found in statements(template)
        if found.effect == "Allow" and not is_key_policy_root_delegation(found)
        for action in found.actions
        if SERVICE_WIDE.match(action)
    ]
    not_action = [
        (stack, found.logical_id)
        for (_, stack), template in templates.items()
        for found in statements(template)
        if found.effect == "Allow" and "NotAction" in found.statement
    ]
    assert broad == [] and not_action == []


def wildcard_resource_statements(template):
    return [
        found
        for found in statements(template)
        if found.resource_type in IDENTITY_POLICY_TYPES
        and found.effect == "Allow"
        and "*" in found.resources
    ]


def test_a_wildcard_resource_only_for_actions_that_have_no_resource_level_permissions(
    templates,
):
    misplaced = [
        (stack, found.logical_id, action)
        for (_, stack), template in templates.items()
        for found in wildcard_resource_statements(template)
        for action in found.actions
        if action not in NO_RESOURCE_LEVEL
    ]
    assert misplaced == []


def names(reason, action):
    service = action.split(":", 1)[0]
    text = reason.lower()
    return action.lower() in text or any(n in text for n in SERVICE_NAMES.get(service, ()))


def test_every_wildcard_suppression_is_granular_and_names_what_it_allows(templates):
    """A suppression without ``applies_to`` silences every future wildcard of its scope.

    (cdk-nag records ``applies_to`` in the template metadata; a suppression passed as a
    Python dict with the key ``applies_to`` loses it on the way to jsii.)"""
    problems = []
    for (_, stack), template in templates.items():
        for found in statements(template):
            if found.resource_type not in IDENTITY_POLICY_TYPES or found.effect != "Allow":
                continue
            entries = suppressions(template, found.logical_id, "AwsSolutions-IAM5")
            blanket = [e["reason"][:60] for e in entries if not e.get("applies_to")]
            if blanket:
                problems.append((stack, found.logical_id, "no applies_to", blanket))
            if "*" not in found.resources:
                continue
            covering = [e for e in entries if "Resource::*" in e.get("applies_to", [])]
            if not covering:
                problems.append((stack, found.logical_id, "Resource::* not suppressed"))
            for action in found.actions:
                if not any(names(e["reason"], action) for e in covering):
                    problems.append((stack, found.logical_id, f"reason does not name {action}"))
    assert sorted(set(map(str, problems))) == []


def endpoint_role_read_statements(template):
    (model,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"]
    role = references(model["Properties"]["ExecutionRoleArn"])
    reads = []
    for found in statements(template):
        owner = template["Resources"][found.logical_id]["Properties"]
        attached = found.logical_id in role or references(owner.get("Roles", [])) & role
        read_actions = [a for a in found.actions if re.match(r"s3:(Get|List)", a)]
        if attached and found.effect == "Allow" and read_actions:
            reads.append((read_actions, [render(r) for r in found.resources]))
    return model, reads


@pytest.mark.parametrize("app", ["s3-record", "local-record"])
def test_the_endpoint_role_reads_its_model_artifact_and_nothing_else(templates, app):
    model, reads = endpoint_role_read_statements(templates[(app, "SconesEndpoint")])
    url = render(model["Properties"]["PrimaryContainer"]["ModelDataUrl"])
    assert url.startswith("s3://") and "*" not in url
    artifact = "arn:<AWS::Partition>:s3:::" + url.removeprefix("s3://")
    assert reads == [(["s3:GetObject"], [artifact])]
