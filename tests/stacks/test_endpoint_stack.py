import json

from aws_cdk.assertions import Match, Template

from tests.stacks.support import S3_RECORD, only, resources, synthesize, write_record


def test_model_uses_the_record_and_the_regional_pytorch_image(synthesized):
    template = synthesized.template("SconesEndpoint")
    container = only(template, "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]
    assert container["ModelDataUrl"] == S3_RECORD["model_data_url"]
    image = json.dumps(container["Image"])
    assert container["Image"]["Fn::Join"][1][0] == {
        "Fn::FindInMap": ["DlcRepositoryAccountMap", {"Ref": "AWS::Region"}, "value"]
    }
    assert image.endswith('"/pytorch-inference:2.6.0-cpu-py312"]]}')
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert only(template, "AWS::SageMaker::Model")["Properties"]["EnableNetworkIsolation"] is True
    accounts = template["Mappings"]["DlcRepositoryAccountMap"]
    assert accounts["us-east-1"]["value"] == "763104351884"
    assert accounts["me-south-1"]["value"] == "217643126080"


def test_endpoint_config_captures_input_and_output_encrypted(synthesized):
    template = Template.from_stack(synthesized.stack("SconesEndpoint"))
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "DataCaptureConfig": {
                "EnableCapture": True,
                "InitialSamplingPercentage": 100,
                "DestinationS3Uri": {
                    "Fn::Join": ["", ["s3://", Match.any_value(), "/data-capture"]]
                },
                "KmsKeyId": Match.any_value(),
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            },
            "KmsKeyId": Match.any_value(),
            "ProductionVariants": [
                Match.object_like(
                    {
                        "InstanceType": "ml.c5.large",
                        "InitialInstanceCount": 1,
                        "VariantName": "AllTraffic",
                    }
                )
            ],
        },
    )


def test_autoscaling_tracks_invocations_per_instance(synthesized):
    template = Template.from_stack(synthesized.stack("SconesEndpoint"))
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": 1,
            "MaxCapacity": 4,
            "ServiceNamespace": "sagemaker",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        },
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "TargetValue": 300,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                    },
                }
            ),
        },
    )


def test_execution_role_reads_only_its_artifact(synthesized):
    template = synthesized.template("SconesEndpoint")
    policy = only(template, "AWS::IAM::Policy")["Properties"]["PolicyDocument"]
    reads = [s for s in policy["Statement"] if s["Action"] == "s3:GetObject"]
    assert [s["Resource"] for s in reads] == [
        {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":s3:::example-training-bucket/models/job-1/output/model.tar.gz",
                ],
            ]
        }
    ]
    assert not any("s3:GetObject*" in json.dumps(s["Action"]) for s in policy["Statement"])


def test_new_artifact_rolls_the_endpoint_under_the_same_name(synthesized, tmp_path):
    other = synthesize(
        tmp_path,
        model_record=str(
            write_record(
                tmp_path,
                model_data_url="s3://example-training-bucket/models/job-2/output/model.tar.gz",
                training_job_name="job-2",
            )
        ),
    )
    before, after = synthesized.template("SconesEndpoint"), other.template("SconesEndpoint")
    endpoint_before = only(before, "AWS::SageMaker::Endpoint")["Properties"]
    endpoint_after = only(after, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint_before["EndpointName"] == endpoint_after["EndpointName"]
    assert endpoint_before["EndpointName"] == {
        "Fn::Join": ["", [{"Ref": "AWS::StackName"}, "-classifier"]]
    }
    # A new model resource (replaced, new generated name) feeds a replaced endpoint config.
    assert (
        only(before, "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]["ModelDataUrl"]
        != only(after, "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]["ModelDataUrl"]
    )
    assert endpoint_after["EndpointConfigName"]["Fn::GetAtt"][1] == "EndpointConfigName"
    assert endpoint_after["RetainAllVariantProperties"] is True


def test_local_artifact_ships_as_a_file_asset(tmp_path):
    (tmp_path / "model.tar.gz").write_bytes(b"not really a model, but a file to ship")
    app = synthesize(
        tmp_path, model_record=str(write_record(tmp_path, model_data_url="model.tar.gz"))
    )
    container = only(app.template("SconesEndpoint"), "AWS::SageMaker::Model")["Properties"][
        "PrimaryContainer"
    ]
    url = json.dumps(container["ModelDataUrl"])
    assert url.startswith('{"Fn::Sub": "s3://cdk-') and url.endswith('.gz"}')
    assets = json.loads((app.outdir / "SconesEndpoint.assets.json").read_text())["files"]
    packaged = [a["source"]["path"] for a in assets.values() if a["source"]["path"].endswith(".gz")]
    assert len(packaged) == 1
    assert (app.outdir / packaged[0]).read_bytes() == (tmp_path / "model.tar.gz").read_bytes()


def test_endpoint_log_group_is_owned_and_removed(synthesized):
    template = Template.from_stack(synthesized.stack("SconesEndpoint"))
    template.has_resource(
        "AWS::Logs::LogGroup",
        {
            "DeletionPolicy": "Delete",
            "Properties": {
                "LogGroupName": {
                    "Fn::Join": [
                        "",
                        ["/aws/sagemaker/Endpoints/", {"Ref": "AWS::StackName"}, "-classifier"],
                    ]
                },
                "RetentionInDays": 30,
            },
        },
    )


def test_new_configs_roll_out_blue_green_with_a_canary_and_alarm_rollback(synthesized):
    template = synthesized.template("SconesEndpoint")
    endpoint = only(template, "AWS::SageMaker::Endpoint")["Properties"]
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
        "WaitIntervalInSeconds": 600,
    }
    assert policy["TerminationWaitInSeconds"] == 600
    # Provisioning (30 min) + the canary bake + the second step's bake + the final bake.
    assert policy["MaximumExecutionTimeoutInSeconds"] == 1800 + 3 * 600
    rollback = endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    alarm_ids = [alarm["AlarmName"]["Ref"] for alarm in rollback]
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert set(alarm_ids) == set(alarms)
    watched = {alarms[i]["Properties"]["MetricName"]: alarms[i]["Properties"] for i in alarm_ids}
    assert set(watched) == {"Invocation5XXErrors", "ModelLatency"}
    for alarm in watched.values():
        # Named after the stack and watching the endpoint by name: no reference to the
        # endpoint, so the endpoint can depend on its alarms without a cycle.
        assert alarm["AlarmName"]["Fn::Join"][1][0] == {"Ref": "AWS::StackName"}
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dimensions == {
            "EndpointName": {"Fn::Join": ["", [{"Ref": "AWS::StackName"}, "-classifier"]]},
            "VariantName": "AllTraffic",
        }
        assert alarm["Period"] == 60
        assert alarm["EvaluationPeriods"] == 3 and alarm["DatapointsToAlarm"] == 2
        assert alarm["TreatMissingData"] == "notBreaching"
        assert "AlarmActions" not in alarm
    assert watched["Invocation5XXErrors"]["Threshold"] == 1
    assert watched["ModelLatency"]["ExtendedStatistic"] == "p99"
    assert watched["ModelLatency"]["Threshold"] == 500_000


def test_linear_rollout_from_context(tmp_path):
    app = synthesize(
        tmp_path,
        model_record=str(write_record(tmp_path)),
        rollout_traffic_routing="LINEAR",
        rollout_step_percentage="25",
        rollout_bake_minutes="5",
    )
    endpoint = only(app.template("SconesEndpoint"), "AWS::SageMaker::Endpoint")["Properties"]
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "LINEAR",
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
        "WaitIntervalInSeconds": 300,
    }
    assert policy["MaximumExecutionTimeoutInSeconds"] == 1800 + 5 * 300
