"""The assembly reader's intrinsics, the S3 event as S3 sends it, and EventBridge matching."""

import hashlib
import json
import re
import uuid

import boto3
import pytest
from moto import mock_aws

from emulator import events
from emulator.cloud_assembly import CloudAssembly
from emulator.errors import TemplateError
from emulator.events import (
    RulePattern,
    S3EventSource,
    Sequencer,
    check_moto_compatibility,
    object_created_event,
    s3_object_created_hook,
)


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


# The fields of S3's "Object Created" event for EventBridge, as documented in
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html ("aws-generated-tags"
# appears only on buckets that carry tags AWS generated; the local buckets carry none).
ENVELOPE_FIELDS = {
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
}
DETAIL_FIELDS = {
    "version",
    "event-version",
    "bucket",
    "object",
    "request-id",
    "requester",
    "source-ip-address",
    "reason",
}
OBJECT_FIELDS = {"key", "size", "etag", "version-id", "sequencer"}
DOCUMENTED_REASONS = {"PutObject", "POST Object", "CopyObject", "CompleteMultipartUpload"}
ACCOUNT = "123456789012"


def captured(versioned: bool = True):
    """A moto bucket with EventBridge notifications on, and the events its creations send."""
    sent: list[dict] = []
    source = S3EventSource("us-east-1", ACCOUNT)

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="scones")
    if versioned:
        s3.put_bucket_versioning(Bucket="scones", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket="scones", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    return (
        s3,
        sent,
        s3_object_created_hook(lambda *created: sent.append(source.object_created(*created))),
    )


def test_the_object_created_event_has_exactly_the_documented_fields():
    with mock_aws():
        s3, sent, hook = captured()
        with hook:
            put = s3.put_object(Bucket="scones", Key="incoming/a b+c.png", Body=b"12345")
    (event,) = sent
    detail = event["detail"]
    assert set(event) == ENVELOPE_FIELDS
    assert set(detail) == DETAIL_FIELDS
    assert set(detail["bucket"]) == {"name"}
    assert set(detail["object"]) == OBJECT_FIELDS
    assert uuid.UUID(event["id"]).version == 4
    assert (event["source"], event["detail-type"]) == ("aws.s3", "Object Created")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    assert event["resources"] == ["arn:aws:s3:::scones"]
    assert (detail["version"], detail["event-version"]) == ("0", "1.1")
    assert detail["object"] == {
        "key": "incoming/a b+c.png",  # as stored: not URL-encoded
        "size": 5,
        "etag": hashlib.md5(b"12345").hexdigest(),  # no quotes
        "version-id": put["VersionId"],
        "sequencer": detail["object"]["sequencer"],
    }
    assert re.fullmatch(r"[0-9A-F]{16,}", detail["object"]["sequencer"])
    assert re.fullmatch(r"[0-9A-Z]{16}", detail["request-id"])
    assert detail["requester"] == ACCOUNT
    assert detail["reason"] == "PutObject"


def test_an_unversioned_bucket_sends_no_version_id():
    with mock_aws():
        s3, sent, hook = captured(versioned=False)
        with hook:
            s3.put_object(Bucket="scones", Key="incoming/a.png", Body=b"1")
    assert set(sent[0]["detail"]["object"]) == OBJECT_FIELDS - {"version-id"}


def test_reasons_are_the_s3_api_that_created_the_object():
    with mock_aws():
        s3, sent, hook = captured()
        with hook:
            s3.put_object(Bucket="scones", Key="incoming/put.png", Body=b"1")
            s3.copy_object(
                Bucket="scones",
                Key="incoming/copy.png",
                CopySource={"Bucket": "scones", "Key": "incoming/put.png"},
            )
            upload = s3.create_multipart_upload(Bucket="scones", Key="incoming/multi.png")
            part = s3.upload_part(
                Bucket="scones",
                Key="incoming/multi.png",
                UploadId=upload["UploadId"],
                PartNumber=1,
                Body=b"x" * 10,
            )
            s3.complete_multipart_upload(
                Bucket="scones",
                Key="incoming/multi.png",
                UploadId=upload["UploadId"],
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
            )
    reasons = {e["detail"]["object"]["key"]: e["detail"]["reason"] for e in sent}
    assert reasons == {
        "incoming/put.png": "PutObject",
        "incoming/copy.png": "CopyObject",
        "incoming/multi.png": "CompleteMultipartUpload",
    }
    assert set(events.REASONS.values()) == DOCUMENTED_REASONS


def s3_order(sequencers: list[str]) -> list[str]:
    """S3's rule: left-pad to the same length, then compare as text."""
    width = max(map(len, sequencers))
    return sorted(sequencers, key=lambda value: value.rjust(width, "0"))


def test_sequencers_grow_with_each_event_on_a_key():
    with mock_aws():
        s3, sent, hook = captured()
        with hook:
            for body in (b"1", b"22", b"333"):
                s3.put_object(Bucket="scones", Key="incoming/a.png", Body=body)
    sequencers = [e["detail"]["object"]["sequencer"] for e in sent]
    assert len(set(sequencers)) == 3
    assert s3_order(sequencers) == sequencers


def test_sequencers_grow_even_when_the_clock_does_not(monkeypatch):
    monkeypatch.setattr(events.time, "time_ns", lambda: 1_700_000_000_000_000_000)
    sequencer = Sequencer()
    values = [sequencer.next("scones", "incoming/a.png") for _ in range(3)]
    assert len(set(values)) == 3
    assert s3_order(values) == values


def test_moto_sends_its_own_variant_which_the_local_mode_replaces():
    """What moto 5.2.5 delivers to a rule itself: not the documented event."""
    with mock_aws():
        s3, sent, hook = captured()
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="seen")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        eventbridge = boto3.client("events", region_name="us-east-1")
        created = {"source": ["aws.s3"], "detail-type": ["Object Created"]}
        eventbridge.put_rule(Name="all-s3", EventPattern=json.dumps(created))
        eventbridge.put_targets(
            Rule="all-s3",
            Targets=[{"Id": "q", "Arn": queue_arn["Attributes"]["QueueArn"]}],
        )
        with hook:
            for body in (b"1", b"22"):
                s3.put_object(Bucket="scones", Key="incoming/a.png", Body=body)
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    motos = [json.loads(message["Body"])["detail"] for message in messages]
    assert [set(d["object"]) for d in motos] == [
        {"key", "size", "eTag", "version-id", "sequencer"}
    ] * 2
    assert {d["reason"] for d in motos} == {"ObjectCreated"}
    assert motos[0]["object"]["sequencer"] == motos[1]["object"]["sequencer"]
    ours = [e["detail"] for e in sent]
    assert [d["reason"] for d in ours] == ["PutObject"] * 2
    assert ours[0]["object"]["sequencer"] != ours[1]["object"]["sequencer"]


RULE = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {"bucket": {"name": ["scones"]}, "object": {"key": [{"prefix": "incoming/"}]}},
}


def event(bucket="scones", key="incoming/a.png", reason="PutObject"):
    return object_created_event(
        bucket, key, 12, '"etag"', "v1", reason, "us-east-1", ACCOUNT, "0000000000000001"
    )


def test_event_patterns_match_with_moto_eventpattern():
    rule = RulePattern(RULE)
    assert rule.matches(event())
    assert not rule.matches(event(key="data-capture/x.jsonl"))
    assert not rule.matches(event(bucket="other"))
    assert not rule.matches({**event(), "detail-type": "Object Deleted"})
    size = RulePattern({"detail": {"object": {"size": [{"numeric": [">", 10, "<=", 12]}]}}})
    assert size.matches(event())
    assert RulePattern({"detail": {"reason": [{"anything-but": ["CopyObject"]}]}}).matches(event())
    assert not RulePattern({"detail": {"reason": [{"anything-but": ["PutObject"]}]}}).matches(
        event()
    )
    assert RulePattern({"detail": {"missing": [{"exists": False}]}}).matches(event())
    assert not RulePattern({"detail": {"missing": [{"exists": True}]}}).matches(event())


def test_or_patterns_match_either_branch():
    rule = RulePattern(
        {
            "source": ["aws.s3"],
            "$or": [
                {"detail": {"object": {"key": [{"prefix": "incoming/"}]}}},
                {"detail": {"reason": ["CompleteMultipartUpload"]}},
            ],
        }
    )
    assert rule.matches(event(key="incoming/a.png"))
    assert rule.matches(event(key="uploads/big.png", reason="CompleteMultipartUpload"))
    assert not rule.matches(event(key="uploads/small.png"))
    assert not rule.matches({**event(), "source": "aws.ec2"})


def test_an_operator_moto_does_not_implement_is_a_clear_error():
    """moto's EventPattern lets an unknown operator match everything: refuse it instead."""
    with pytest.raises(TemplateError, match="not emulated"):
        RulePattern({"detail": {"object": {"key": [{"prefx": "incoming/"}]}}})
    with pytest.raises(TemplateError, match="not emulated"):
        RulePattern({"detail": {"reason": [{"anything-but": {"prefx": "Copy"}}]}})


def test_moto_still_has_the_event_pattern_and_the_s3_hook_point():
    """Fails loudly when a moto upgrade moves EventPattern or notifications.send_event."""
    from moto.events.models import EventPattern
    from moto.s3 import notifications

    check_moto_compatibility()
    assert RulePattern(RULE)._moto.__class__ is EventPattern
    assert events.EXPECTED_SEND_EVENT_PARAMETERS == ("account_id", "event_name", "bucket", "key")
    with s3_object_created_hook(lambda *args: None):
        assert notifications.send_event._local_mode_hook
    assert not hasattr(notifications.send_event, "_local_mode_hook")


def test_moto_s3_creations_reach_the_hook_only_with_eventbridge_enabled():
    """Fails loudly if moto stops routing object creations through notifications.send_event."""
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
    assert [(bucket, key, size, reason) for bucket, key, size, _, _, reason in seen] == [
        ("with-events", "incoming/a.png", 4, "PutObject"),
    ]
