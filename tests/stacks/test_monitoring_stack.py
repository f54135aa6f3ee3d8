"""The drift monitor's deployment, the alarms, their topic and the dashboard."""

import json

import pytest
from aws_cdk.assertions import Annotations, Match, Template

from tests.stacks.support import S3_RECORD, only, resources, synthesize, write_record

STACK = "SconesMonitoring"


@pytest.fixture(scope="module")
def template(synthesized):
    return synthesized.template(STACK)


def alarms(template) -> dict[str, dict]:
    """Alarm properties by construct id (the logical id without its hash)."""
    return {
        logical_id[:-8]: alarm["Properties"]
        for logical_id, alarm in resources(template, "AWS::CloudWatch::Alarm").items()
    }


def metric_stats(alarm: dict) -> dict[str, dict]:
    """The MetricStat of each metric of a metric-math alarm, by its id."""
    return {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}


def test_drift_monitor_runs_on_the_scheduled_rate(template):
    schedule = only(template, "AWS::Scheduler::Schedule")["Properties"]
    assert schedule["ScheduleExpression"] == "rate(1 hour)"
    assert schedule["State"] == "ENABLED"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert "DriftMonitorFunction" in schedule["Target"]["Arn"]["Fn::GetAtt"][0]
    assert schedule["Target"]["RetryPolicy"] == {
        "MaximumEventAgeInSeconds": 3600,
        "MaximumRetryAttempts": 2,
    }


def test_schedule_rate_and_thresholds_come_from_context(tmp_path):
    app = synthesize(
        tmp_path,
        model_record=str(write_record(tmp_path)),
        drift_monitor_rate_minutes="15",
        drift_window_minutes="30",
        drift_threshold="0.3",
        low_confidence_rate_limit="0.1",
        alarm_email="ops@example.com",
    )
    template = app.template(STACK)
    schedule = only(template, "AWS::Scheduler::Schedule")["Properties"]
    assert schedule["ScheduleExpression"] == "rate(15 minutes)"
    (monitor,) = [
        fn["Properties"]
        for logical_id, fn in resources(template, "AWS::Lambda::Function").items()
        if logical_id.startswith("DriftMonitorFunction")
    ]
    variables = monitor["Environment"]["Variables"]
    assert variables["WINDOW_MINUTES"] == "30"
    assert variables["DRIFT_THRESHOLD"] == "0.3"
    assert alarms(template)["LowConfidenceRate"]["Threshold"] == pytest.approx(0.1)
    assert alarms(template)["DriftDetected"]["Period"] == 900
    subscription = only(template, "AWS::SNS::Subscription")["Properties"]
    assert subscription["Protocol"] == "email"
    assert subscription["Endpoint"] == "ops@example.com"


def test_drift_monitor_function_and_its_contract(template):
    (monitor,) = [
        fn["Properties"]
        for logical_id, fn in resources(template, "AWS::Lambda::Function").items()
        if logical_id.startswith("DriftMonitorFunction")
    ]
    assert monitor["Handler"] == "handler.lambda_handler"
    assert monitor["Runtime"] == "python3.12"
    assert monitor["Timeout"] == 300
    variables = monitor["Environment"]["Variables"]
    assert variables["BASELINE_KEY"] == "monitoring/baseline/baseline.json"
    assert variables["REPORT_PREFIX"] == "monitoring/reports/"
    assert variables["WINDOW_MINUTES"] == "60"
    assert variables["DRIFT_THRESHOLD"] == "0.2"
    assert variables["CONFIDENCE_THRESHOLD"] == "0.75"
    assert variables["MIN_RECORDS"] == "30"
    assert variables["CLASS_NAMES"] == "bicycle,motorcycle"  # the model record's class_names
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "SconesUnlimited"
    # The endpoint's own capture folder: data-capture/<endpoint name from SconesEndpoint>/
    prefix = variables["CAPTURE_PREFIX"]["Fn::Join"][1]
    assert prefix[0] == "data-capture/"
    assert prefix[1]["Fn::GetStackOutput"]["StackName"] == "SconesEndpoint"
    assert prefix[2] == "/"
    assert variables["BUCKET_NAME"]["Fn::GetStackOutput"]["StackName"] == "SconesStorage"


def test_drift_monitor_reads_capture_and_baseline_and_writes_only_reports(template):
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for logical_id, p in resources(template, "AWS::IAM::Policy").items()
        if logical_id.startswith("DriftMonitorFunctionRole")
    ]
    reads = [s for s in policy if "s3:GetObject*" in s["Action"]]
    read_targets = json.dumps([s["Resource"] for s in reads])
    assert '"/data-capture/"' in read_targets
    assert "/monitoring/baseline/baseline.json" in read_targets
    writes = [s for s in policy if "s3:PutObject" in s["Action"]]
    assert len(writes) == 1
    assert json.dumps(writes[0]["Resource"]).endswith('"/monitoring/reports/*"]]}')
    assert not any("s3:DeleteObject" in json.dumps(s["Action"]) for s in policy)
    kms = [s for s in policy if "kms:Decrypt" in json.dumps(s["Action"])]
    assert kms and "SconesStorage" in json.dumps(kms)


def test_baseline_from_the_model_record_is_uploaded(synthesized, template):
    deployment = only(template, "Custom::CDKBucketDeployment")["Properties"]
    assert deployment["DestinationBucketKeyPrefix"] == "monitoring/baseline/"
    assert deployment["Prune"] is False
    manifest = json.loads((synthesized.outdir / "SconesMonitoring.assets.json").read_text())
    (source,) = [
        a["source"]["path"]
        for a in manifest["files"].values()
        if (synthesized.outdir / a["source"]["path"] / "baseline.json").is_file()
    ]
    baseline = json.loads((synthesized.outdir / source / "baseline.json").read_text())
    assert baseline["schema"] == "scones-drift-baseline/1"
    assert baseline["top_confidences"] == S3_RECORD["evaluation"]["baseline"]["top_confidences"]
    assert baseline["confidence_threshold"] == 0.85
    assert baseline["model"]["training_job_name"] == "job-1"


def test_record_without_a_baseline_warns_and_uploads_nothing(tmp_path):
    record = {key: value for key, value in S3_RECORD.items() if key != "evaluation"}
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    app = synthesize(tmp_path, model_record=str(path))
    assert resources(app.template(STACK), "Custom::CDKBucketDeployment") == {}
    warnings = Annotations.from_stack(app.stack(STACK)).find_warning(
        "*", Match.string_like_regexp("no drift baseline uploaded.*BaselineNotFound")
    )
    assert len(warnings) == 1


def test_topic_is_encrypted_tls_only_and_fed_by_every_alarm(template):
    topic = only(template, "AWS::SNS::Topic")["Properties"]
    assert topic["KmsMasterKeyId"]["Fn::GetAtt"][0].startswith("AlarmTopicKey")
    policy = only(template, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    key = only(template, "AWS::KMS::Key")
    assert key["DeletionPolicy"] == "Delete"
    assert key["Properties"]["EnableKeyRotation"] is True
    cloudwatch = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch and set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert resources(template, "AWS::SNS::Subscription") == {}  # alarm_email unset
    (topic_id,) = resources(template, "AWS::SNS::Topic")
    for name, alarm in alarms(template).items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], name


# name -> (metric, statistic, period, threshold, comparison, evaluation periods, missing data)
EXPECTED_SIMPLE_ALARMS = {
    "DriftDetected": (
        "DriftDetected",
        "Maximum",
        3600,
        1,
        "GreaterThanOrEqualToThreshold",
        1,
        "notBreaching",
    ),
    "DriftMonitorSilent": (
        "CapturedRecords",
        "SampleCount",
        3600,
        1,
        "LessThanThreshold",
        2,
        "breaching",
    ),
    "Endpoint5XXErrors": (
        "Invocation5XXErrors",
        "Sum",
        300,
        5,
        "GreaterThanOrEqualToThreshold",
        3,
        "notBreaching",
    ),
    "Endpoint4XXErrors": (
        "Invocation4XXErrors",
        "Sum",
        300,
        5,
        "GreaterThanOrEqualToThreshold",
        3,
        "notBreaching",
    ),
    "DriftMonitorErrors": (
        "Errors",
        "Sum",
        3600,
        1,
        "GreaterThanOrEqualToThreshold",
        1,
        "notBreaching",
    ),
    **{
        f"{name}Throttles": (
            "Throttles",
            "Sum",
            300,
            1,
            "GreaterThanOrEqualToThreshold",
            1,
            "notBreaching",
        )
        for name in ("SerializeImage", "ClassifyImage", "FilterInferences", "DriftMonitor")
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED_SIMPLE_ALARMS))
def test_simple_alarm(template, name):
    metric, statistic, period, threshold, comparison, periods, missing = EXPECTED_SIMPLE_ALARMS[
        name
    ]
    alarm = alarms(template)[name]
    assert alarm["MetricName"] == metric
    assert alarm["Statistic"] == statistic
    assert alarm["Period"] == period
    assert alarm["Threshold"] == threshold
    assert alarm["ComparisonOperator"] == comparison
    assert alarm["EvaluationPeriods"] == periods
    assert alarm["TreatMissingData"] == missing


def test_drift_alarms_watch_the_monitor_metrics_without_dimensions(template):
    found = alarms(template)
    for name in ("DriftDetected", "DriftMonitorSilent"):
        assert found[name]["Namespace"] == "SconesUnlimited"
        assert "Dimensions" not in found[name]


def test_endpoint_alarms_watch_the_endpoint_variant(template):
    found = alarms(template)
    for name in ("Endpoint5XXErrors", "Endpoint4XXErrors", "EndpointLatencyP99"):
        alarm = found[name]
        assert alarm["Namespace"] == "AWS/SageMaker"
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dimensions["VariantName"] == "AllTraffic"
        assert dimensions["EndpointName"]["Fn::GetStackOutput"]["StackName"] == "SconesEndpoint"
    assert found["Endpoint5XXErrors"]["DatapointsToAlarm"] == 2


def test_latency_alarm_is_p99_in_microseconds(template):
    alarm = alarms(template)["EndpointLatencyP99"]
    assert alarm["MetricName"] == "ModelLatency"
    assert alarm["ExtendedStatistic"] == "p99"
    assert alarm["Period"] == 300
    assert alarm["Threshold"] == 500_000  # 500 ms
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["EvaluationPeriods"] == 3
    assert alarm["TreatMissingData"] == "notBreaching"


def test_low_confidence_alarm_matches_what_filter_inferences_publishes(template):
    alarm = alarms(template)["LowConfidenceRate"]
    stats = metric_stats(alarm)
    for metric_id, stat in (("rate", "Average"), ("calls", "SampleCount")):
        assert stats[metric_id]["Stat"] == stat
        assert stats[metric_id]["Period"] == 900
        # Powertools EMF: namespace from the environment, one dimension service=<folder>.
        assert stats[metric_id]["Metric"] == {
            "Namespace": "SconesUnlimited",
            "MetricName": "LowConfidenceInferences",
            "Dimensions": [{"Name": "service", "Value": "filter_inferences"}],
        }
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "IF(calls >= 10, rate, 0)"
    assert alarm["Threshold"] == 0.25
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["EvaluationPeriods"] == 2
    assert alarm["TreatMissingData"] == "notBreaching"


def test_failed_executions_alarm_is_a_rate_of_the_workflow(template):
    alarm = alarms(template)["WorkflowFailureRate"]
    stats = metric_stats(alarm)
    assert stats["failed"]["Metric"]["MetricName"] == "ExecutionsFailed"
    assert stats["started"]["Metric"]["MetricName"] == "ExecutionsStarted"
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == "AWS/States"
        assert stat["Stat"] == "Sum" and stat["Period"] == 900
        (dimension,) = stat["Metric"]["Dimensions"]
        assert dimension["Name"] == "StateMachineArn"
        assert dimension["Value"]["Fn::GetStackOutput"]["StackName"] == "SconesWorkflow"
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "IF(started >= 10, failed / started, 0)"
    assert alarm["Threshold"] == 0.4
    assert alarm["EvaluationPeriods"] == 2
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("name", ["SerializeImage", "ClassifyImage", "FilterInferences"])
def test_workflow_function_errors_alarm_on_a_rate(template, name):
    alarm = alarms(template)[f"{name}Errors"]
    stats = metric_stats(alarm)
    assert stats["errors"]["Metric"]["MetricName"] == "Errors"
    assert stats["calls"]["Metric"]["MetricName"] == "Invocations"
    (dimension,) = stats["errors"]["Metric"]["Dimensions"]
    assert dimension["Name"] == "FunctionName"
    assert name in json.dumps(dimension["Value"])
    assert alarm["Threshold"] == 0.4
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"


def test_every_issue_alarm_exists(template):
    assert set(alarms(template)) == {
        "DriftDetected",
        "DriftMonitorSilent",
        "LowConfidenceRate",
        "WorkflowFailureRate",
        "Endpoint5XXErrors",
        "Endpoint4XXErrors",
        "EndpointLatencyP99",
        *(
            f"{name}{kind}"
            for name in ("SerializeImage", "ClassifyImage", "FilterInferences", "DriftMonitor")
            for kind in ("Errors", "Throttles")
        ),
    }


def test_dashboard_shows_workflow_endpoint_drift_and_alarms(template):
    dashboard = only(template, "AWS::CloudWatch::Dashboard")["Properties"]
    body = json.loads(
        "".join(
            part if isinstance(part, str) else "TOKEN"
            for part in dashboard["DashboardBody"]["Fn::Join"][1]
        )
    )
    titles = {widget["properties"].get("title") for widget in body["widgets"]}
    assert titles == {
        "Workflow executions",
        "Failures by kind",
        "Low-confidence rate",
        "Endpoint invocations",
        "Endpoint model latency (ms)",
        "Endpoint instances and load per instance",
        "Drift (KS statistic of the window against the baseline)",
        "Captured traffic",
        "Alarms",
    }
    text = json.dumps(body)
    for metric in (
        "ExecutionsStarted",
        "ExecutionsFailed",
        "ImagesRejected",
        "EndpointFailures",
        "LowConfidenceInferences",
        "Invocations",
        "InvocationsPerInstance",
        "ModelLatency",
        "DriftScore",
        "DriftDetected",
        "LowConfidenceRate",
        "BicycleShare",
        "MeanBrightness",
        "CapturedRecords",
    ):
        assert f'"{metric}"' in text, metric
    (alarm_widget,) = [w for w in body["widgets"] if w["properties"].get("title") == "Alarms"]
    # 15 notification alarms and the endpoint's 2 rollback alarms.
    assert len(alarm_widget["properties"]["alarms"]) == 17


def test_stateful_resources_are_removed_on_destroy(template):
    checked = Template.from_json(template)
    checked.has_resource("AWS::KMS::Key", {"DeletionPolicy": "Delete"})
    for logical_id, group in resources(template, "AWS::Logs::LogGroup").items():
        assert group["DeletionPolicy"] == "Delete", logical_id
        assert group["Properties"]["RetentionInDays"] == 30, logical_id
    deployment = only(template, "Custom::CDKBucketDeployment")["Properties"]
    assert deployment.get("RetainOnDelete") is False
