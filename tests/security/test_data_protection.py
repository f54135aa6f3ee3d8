"""Encryption, TLS-only access, no public buckets, no secrets in Lambda environments."""

import re

from tests.security.policies import references, render

SECRET_NAME = re.compile(r"SECRET|PASSW|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL|ACCESS_?KEY", re.I)
SECRET_VALUE = [
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(ghp|gho|github_pat|xox[bap]|sk)[-_][A-Za-z0-9_]{16,}"),
    re.compile(r"\b[A-Za-z0-9+/]{40}\b"),  # the shape of an AWS secret access key
    re.compile(r"://[^/\s:@]+:[^/\s@]+@"),  # credentials inside a URL
]


def resources(template, resource_type):
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def all_of(templates, resource_type):
    return {
        (stack, logical_id): (template, resource)
        for (_, stack), template in templates.items()
        for logical_id, resource in resources(template, resource_type).items()
    }


def log_destinations(template):
    return {
        render(bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"])
        for bucket in resources(template, "AWS::S3::Bucket").values()
        if "LoggingConfiguration" in bucket["Properties"]
    }


def test_buckets_are_encrypted_and_every_data_bucket_with_a_kms_key(templates):
    buckets = all_of(templates, "AWS::S3::Bucket")
    assert buckets
    kms_buckets = 0
    for (stack, logical_id), (template, bucket) in buckets.items():
        (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        default = rule["ServerSideEncryptionByDefault"]
        if f"<{logical_id}>" in log_destinations(template):
            # S3 server access logs can only be delivered to an SSE-S3 bucket.
            assert default["SSEAlgorithm"] == "AES256", (stack, logical_id)
            continue
        assert default["SSEAlgorithm"] == "aws:kms", (stack, logical_id)
        (key,) = references(default["KMSMasterKeyID"])
        assert template["Resources"][key]["Type"] == "AWS::KMS::Key"
        assert template["Resources"][key]["Properties"]["EnableKeyRotation"] is True
        kms_buckets += 1
    assert kms_buckets >= 1


def test_data_capture_and_the_endpoint_volume_are_encrypted_with_the_key(templates):
    configs = all_of(templates, "AWS::SageMaker::EndpointConfig")
    assert configs
    for (stack, _), (_, config) in configs.items():
        properties = config["Properties"]
        capture = properties["DataCaptureConfig"]
        assert capture["EnableCapture"] is True
        assert "DataKey" in render(capture["KmsKeyId"]), stack
        assert "DataKey" in render(properties["KmsKeyId"]), stack


def deny_without_tls(policy, actions):
    return [
        statement
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement.get("Principal") in ("*", {"AWS": "*"})
        and statement["Action"] in actions
        and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]


def test_every_bucket_queue_and_topic_denies_requests_without_tls(templates):
    checked = 0
    for (_, _stack), template in templates.items():
        for kind, policy_kind, target_key, actions in (
            ("AWS::S3::Bucket", "AWS::S3::BucketPolicy", "Bucket", ("s3:*",)),
            ("AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "Queues", ("sqs:*",)),
            ("AWS::SNS::Topic", "AWS::SNS::TopicPolicy", "Topics", ("sns:Publish", "sns:*")),
        ):
            policies = resources(template, policy_kind).values()
            for logical_id in resources(template, kind):
                denies = [
                    statement
                    for policy in policies
                    if logical_id in references(policy["Properties"][target_key])
                    for statement in deny_without_tls(policy, actions)
                ]
                assert denies, f"{kind} {logical_id} accepts requests without TLS"
                if kind == "AWS::S3::Bucket":
                    covered = {render(r) for r in denies[0]["Resource"]}
                    assert covered == {f"<{logical_id}.Arn>", f"<{logical_id}.Arn>/*"}
                checked += 1
    assert checked >= 3


def test_every_bucket_blocks_public_access(templates):
    for (stack, logical_id), (_, bucket) in all_of(templates, "AWS::S3::Bucket").items():
        block = bucket["Properties"]["PublicAccessBlockConfiguration"]
        assert block == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, (stack, logical_id)


def looks_secret(name, value):
    if SECRET_NAME.search(name):
        return True
    return isinstance(value, str) and any(p.search(value) for p in SECRET_VALUE)


def test_the_secret_detector_catches_the_usual_shapes():
    assert looks_secret("DB_PASSWORD", "hunter2")
    assert looks_secret("OPENAI_API_KEY", "x")
    assert looks_secret("CONFIG", "AKIAIOSFODNN7EXAMPLE")
    assert looks_secret("CONFIG", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert looks_secret("DATABASE_URL", "postgres://admin:pa55@db:5432/x")
    assert not looks_secret("POWERTOOLS_SERVICE_NAME", "classify_image")
    assert not looks_secret("ENDPOINT_READ_TIMEOUT_SECONDS", "10")


def test_no_lambda_environment_variable_looks_like_a_secret(templates):
    functions = all_of(templates, "AWS::Lambda::Function")
    assert len(functions) >= 3
    suspicious = [
        (stack, logical_id, name)
        for (stack, logical_id), (_, function) in functions.items()
        for name, value in function["Properties"]
        .get("Environment", {})
        .get("Variables", {})
        .items()
        if looks_secret(name, value)
    ]
    assert suspicious == []


def test_every_log_group_is_encrypted_with_the_data_key(templates):
    groups = [
        (app, stack, logical_id, group)
        for (app, stack), template in templates.items()
        for logical_id, group in resources(template, "AWS::Logs::LogGroup").items()
    ]
    assert groups
    for app, stack, logical_id, group in groups:
        # The storage stack's key, through the ARN it publishes to the other stacks.
        key = render(group["Properties"].get("KmsKeyId"))
        assert key.startswith("<SconesStorage.") and "DataKey" in key, (app, stack, logical_id)


def test_the_data_key_lets_cloudwatch_logs_use_it_for_this_accounts_log_groups_only(templates):
    storage = [t for (_, stack), t in templates.items() if stack == "SconesStorage"]
    assert storage
    for template in storage:
        (data_key,) = [
            key
            for logical_id, key in resources(template, "AWS::KMS::Key").items()
            if logical_id.startswith("DataKey")
        ]
        (logs,) = [
            statement
            for statement in data_key["Properties"]["KeyPolicy"]["Statement"]
            if "logs." in render(statement["Principal"].get("Service", ""))
        ]
        assert render(logs["Principal"]["Service"]) == "logs.<AWS::Region>.amazonaws.com"
        assert "kms:*" not in logs["Action"]
        context = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
        assert render(context) == (
            "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*"
        )
