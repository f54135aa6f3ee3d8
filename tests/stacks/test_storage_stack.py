from aws_cdk.assertions import Match, Template

from tests.stacks.support import only, resources


def data_bucket(template):
    buckets = resources(template, "AWS::S3::Bucket")
    (bucket,) = [b for b in buckets.values() if "LoggingConfiguration" in b["Properties"]]
    return bucket


def test_bucket_is_private_encrypted_versioned_and_logged(synthesized):
    bucket = data_bucket(synthesized.template("SconesStorage"))["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert "Fn::GetAtt" in rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["LoggingConfiguration"]["LogFilePrefix"] == "data-bucket/"


def test_key_rotates_and_is_deleted_with_the_stack(synthesized):
    key = only(synthesized.template("SconesStorage"), "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Delete"


def test_every_bucket_denies_plain_http(synthesized):
    template = Template.from_stack(synthesized.stack("SconesStorage"))
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_lifecycle_expires_incoming_and_capture_from_context(synthesized):
    rules = data_bucket(synthesized.template("SconesStorage"))["Properties"][
        "LifecycleConfiguration"
    ]
    by_prefix = {rule.get("Prefix"): rule for rule in rules["Rules"]}
    assert by_prefix["incoming/"]["ExpirationInDays"] == 30
    assert by_prefix["data-capture/"]["ExpirationInDays"] == 90


def test_eventbridge_notifications_are_on(synthesized):
    template = Template.from_stack(synthesized.stack("SconesStorage"))
    template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {"NotificationConfiguration": {"EventBridgeConfiguration": {}}},
    )


def test_destroy_empties_and_deletes_both_buckets(synthesized):
    template = synthesized.template("SconesStorage")
    for bucket in resources(template, "AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Delete"
    assert len(resources(template, "Custom::S3AutoDeleteObjects")) == 2


def test_training_finds_bucket_and_role_without_copy_paste(synthesized):
    template = Template.from_stack(synthesized.stack("SconesStorage"))
    template.has_resource_properties(
        "AWS::SSM::Parameter", {"Name": "/scones-unlimited/data-bucket-name", "Type": "String"}
    )
    template.has_resource_properties(
        "AWS::SSM::Parameter",
        {"Name": "/scones-unlimited/sagemaker-training-role-arn", "Type": "String"},
    )
    template.has_output("BucketName", {"Value": {"Ref": Match.string_like_regexp("^Data")}})


def test_training_role_reads_data_and_writes_models_only(synthesized):
    template = synthesized.template("SconesStorage")
    (policy,) = [
        p
        for logical_id, p in resources(template, "AWS::IAM::Policy").items()
        if logical_id.startswith("TrainingRole")
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    s3_resources = {
        json_text
        for s in statements
        if any(str(a).startswith("s3:") for a in _list(s["Action"]))
        for json_text in map(str, _list(s["Resource"]))
    }
    prefixes = {"/data/*", "/models/*", "/checkpoints/*"}
    for resource in s3_resources:
        assert any(prefix in resource for prefix in prefixes) or "Arn" in resource
    writes = [s for s in statements if "s3:PutObject" in _list(s["Action"])]
    assert all("/data/*" not in str(s["Resource"]) for s in writes)


def _list(value):
    return value if isinstance(value, list) else [value]
