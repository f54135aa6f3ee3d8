"""The assembly reader's intrinsics and EventBridge's pattern matching, on small fixtures."""

import json

import pytest

from emulator.cloud_assembly import CloudAssembly
from emulator.errors import TemplateError
from emulator.events import matches, object_created_event


@pytest.fixture
def assembly(tmp_path):
    storage = {
        "Resources": {"Data": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {
            "BucketRef": {"Value": {"Ref": "Data"}},
            "Exported": {"Value": {"Ref": "Data"}, "Export": {"Name": "scones-bucket"}},
        },
        "Mappings": {"Images": {"us-east-1": {"account": "763104351884"}}},
    }
    workflow = {
        "Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "handler.x"}},
            "Machine": {"Type": "AWS::StepFunctions::StateMachine"},
        }
    }
    manifest = {"artifacts": {}}
    for name, template in (("Storage", storage), ("Workflow", workflow)):
        (tmp_path / f"{name}.template.json").write_text(json.dumps(template))
        manifest["artifacts"][name] = {
            "type": "aws:cloudformation:stack",
            "properties": {"templateFile": f"{name}.template.json"},
        }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return CloudAssembly(tmp_path)


def test_intrinsics_resolve_across_stacks(assembly):
    resolve = assembly.resolve
    bucket = "storage-data"
    assert resolve("Storage", {"Ref": "Data"}) == bucket
    get_output = {"StackName": "Storage", "OutputName": "BucketRef", "Region": "x"}
    assert resolve("Workflow", {"Fn::GetStackOutput": get_output}) == bucket
    assert resolve("Workflow", {"Fn::ImportValue": "scones-bucket"}) == bucket
    assert resolve("Workflow", {"Fn::GetAtt": ["Fn", "Arn"]}) == (
        "arn:aws:lambda:us-east-1:123456789012:function:Workflow-Fn"
    )
    assert resolve("Workflow", {"Ref": "Machine"}).endswith(":stateMachine:Workflow-Machine")
    joined = {"Fn::Join": ["", ["s3://", {"Ref": "AWS::StackName"}, "/", {"Ref": "AWS::Region"}]]}
    assert resolve("Workflow", joined) == "s3://Workflow/us-east-1"
    assert resolve("Workflow", {"Fn::Sub": "${Fn.Arn}|${AWS::AccountId}|${!Literal}"}) == (
        "arn:aws:lambda:us-east-1:123456789012:function:Workflow-Fn|123456789012|${Literal}"
    )
    mapped = {"Fn::FindInMap": ["Images", {"Ref": "AWS::Region"}, "account"]}
    assert resolve("Storage", mapped) == "763104351884"
    with pytest.raises(TemplateError, match="Fn::If"):
        resolve("Workflow", {"Fn::If": ["c", 1, 2]})


def test_a_missing_assembly_says_to_synthesize(tmp_path):
    with pytest.raises(TemplateError, match="synthesize first"):
        CloudAssembly(tmp_path)


RULE = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {"bucket": {"name": ["scones"]}, "object": {"key": [{"prefix": "incoming/"}]}},
}


def event(bucket="scones", key="incoming/a.png"):
    return object_created_event(bucket, key, 12, '"etag"', "v1", "PutObject", "us-east-1", "1")


def test_the_object_created_event_has_the_aws_shape():
    created = event()
    assert created["detail-type"] == "Object Created"
    assert created["resources"] == ["arn:aws:s3:::scones"]
    assert created["detail"]["object"]["key"] == "incoming/a.png"
    assert created["detail"]["object"]["etag"] == "etag"
    assert created["detail"]["reason"] == "PutObject"


def test_event_patterns_match_as_eventbridge_does():
    assert matches(RULE, event())
    assert not matches(RULE, event(key="data-capture/x.jsonl"))
    assert not matches(RULE, event(bucket="other"))
    assert matches({"detail": {"object": {"size": [{"numeric": [">", 10, "<=", 12]}]}}}, event())
    assert matches({"detail": {"reason": [{"anything-but": ["CopyObject"]}]}}, event())
    assert matches({"detail": {"object": {"key": [{"suffix": ".png"}]}}}, event())
    assert matches({"detail": {"missing": [{"exists": False}]}}, event())
    assert not matches({"detail": {"missing": [{"exists": True}]}}, event())
    with pytest.raises(TemplateError, match="not emulated"):
        matches({"source": [{"cidr": "10.0.0.0/8"}]}, event())


def test_moto_s3_creations_reach_the_hook_only_with_eventbridge_enabled():
    """Fails loudly if moto stops routing object creations through notifications.send_event."""
    import boto3
    from moto import mock_aws

    from emulator.events import s3_object_created_hook

    seen = []
    with mock_aws(), s3_object_created_hook(lambda *args: seen.append(args)):
        s3 = boto3.client("s3")
        for bucket in ("with-events", "without-events"):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_notification_configuration(
            Bucket="with-events", NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        s3.put_object(Bucket="with-events", Key="incoming/a.png", Body=b"1234")
        s3.put_object(Bucket="without-events", Key="incoming/b.png", Body=b"1234")
        s3.copy_object(
            Bucket="with-events",
            Key="incoming/c.png",
            CopySource={"Bucket": "with-events", "Key": "incoming/a.png"},
        )
    assert [(bucket, key, size, reason) for bucket, key, size, _, _, reason in seen] == [
        ("with-events", "incoming/a.png", 4, "PutObject"),
        ("with-events", "incoming/c.png", 4, "CopyObject"),
    ]
