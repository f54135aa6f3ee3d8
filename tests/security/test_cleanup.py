"""`cdk destroy` leaves nothing behind but what the README says: checked by resource type,
so that the resources any stack adds later are held to the same rules."""

import re
from pathlib import Path

from tests.security.policies import references, render

README = Path(__file__).resolve().parents[2] / "README.md"
RETAINING = {"Retain", "RetainExceptOnCreate", "Snapshot"}
# Types whose CDK L2 default removal policy is RETAIN: they must say Delete explicitly.
RETAINED_BY_DEFAULT = {
    "AWS::S3::Bucket",
    "AWS::Logs::LogGroup",
    "AWS::KMS::Key",
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
    "AWS::EFS::FileSystem",
    "AWS::Cognito::UserPool",
    "AWS::ECR::Repository",
}
STATEFUL_SEEN = {
    "AWS::S3::Bucket",
    "AWS::Logs::LogGroup",
    "AWS::KMS::Key",
    "AWS::SQS::Queue",
    "AWS::SageMaker::Endpoint",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Model",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::SSM::Parameter",
}


def every_resource(templates):
    for (app, stack), template in templates.items():
        for logical_id, resource in template["Resources"].items():
            yield (app, stack, logical_id), template, resource


def cleanup_section():
    text = README.read_text()
    match = re.search(r"^### What `cdk destroy` removes.*?(?=^#)", text, re.M | re.S)
    assert match, "README has no section on what `cdk destroy` removes"
    return match.group(0)


def test_no_resource_is_retained_on_destroy_or_replacement(templates):
    types = {resource["Type"] for _, _, resource in every_resource(templates)}
    assert types >= STATEFUL_SEEN, STATEFUL_SEEN - types
    retained = [
        (where, resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy"))
        for where, _, resource in every_resource(templates)
        if {resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")} & RETAINING
    ]
    assert retained == []


def test_types_that_cdk_retains_by_default_are_deleted_explicitly(templates):
    undecided = [
        (where, resource["Type"])
        for where, _, resource in every_resource(templates)
        if resource["Type"] in RETAINED_BY_DEFAULT and resource.get("DeletionPolicy") != "Delete"
    ]
    assert undecided == []


def test_every_bucket_is_emptied_before_it_is_deleted(templates):
    for (app, stack), template in templates.items():
        emptied = {
            name
            for resource in template["Resources"].values()
            if resource["Type"] == "Custom::S3AutoDeleteObjects"
            for name in references(resource["Properties"]["BucketName"])
        }
        buckets = {
            logical_id
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == "AWS::S3::Bucket"
        }
        assert buckets <= emptied, (app, stack, buckets - emptied)


def test_every_log_group_expires(templates):
    forever = [
        where
        for where, _, resource in every_resource(templates)
        if resource["Type"] == "AWS::Logs::LogGroup"
        and not resource["Properties"].get("RetentionInDays")
    ]
    assert forever == []


def test_keys_are_deleted_after_the_minimum_waiting_period_the_readme_states(templates):
    keys = [r for _, _, r in every_resource(templates) if r["Type"] == "AWS::KMS::Key"]
    assert keys and all(k["Properties"]["PendingWindowInDays"] == 7 for k in keys)
    assert "7-day minimum waiting period" in cleanup_section()


def test_the_endpoint_log_group_belongs_to_the_stack(templates):
    for (_, stack), template in templates.items():
        if stack != "SconesEndpoint":
            continue
        names = [
            render(resource["Properties"].get("LogGroupName", ""))
            for resource in template["Resources"].values()
            if resource["Type"] == "AWS::Logs::LogGroup"
        ]
        assert "/aws/sagemaker/Endpoints/<AWS::StackName>-classifier" in names
    assert "/aws/sagemaker/Endpoints/<stack>-classifier" in cleanup_section()


def test_what_the_readme_says_is_left_behind_is_what_the_stacks_leave(templates):
    """Lambda writes to /aws/lambda/<function> unless the function names a log group; such
    groups are not the stack's and outlive it. Every function either logs to a group its
    stack deletes, or the README names the groups left behind."""
    section = cleanup_section()
    implicit = []
    for (_, stack, logical_id), template, resource in every_resource(templates):
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        group = resource["Properties"].get("LoggingConfig", {}).get("LogGroup")
        if group is None:
            implicit.append((stack, logical_id))
            continue
        (owned,) = references(group)
        assert template["Resources"][owned]["Type"] == "AWS::Logs::LogGroup"
        assert template["Resources"][owned]["DeletionPolicy"] == "Delete"
    if implicit:
        assert "/aws/lambda/" in section, f"the README does not say these stay: {implicit}"
    # What it does list is really not created by the stacks.
    for left in re.findall(r"`(/aws/[^`<]+)`", section):
        assert not any(
            render(resource["Properties"].get("LogGroupName", "")) == left
            for _, _, resource in every_resource(templates)
        ), left
