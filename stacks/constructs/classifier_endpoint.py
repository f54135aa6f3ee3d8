"""The SageMaker model, endpoint config (with data capture), endpoint and its autoscaling."""

from __future__ import annotations

import math
from dataclasses import dataclass

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.region_info import FactName
from constructs import Construct

from stacks.constructs.project_logs import ProjectLogs
from stacks.names import CAPTURE_PREFIX
from training.record import ModelRecord

VARIANT_NAME = "AllTraffic"
ENDPOINT_METRICS_NAMESPACE = "AWS/SageMaker"
# SageMaker needs this long, at most, to provision the green fleet before traffic shifts.
GREEN_FLEET_PROVISIONING = Duration.minutes(30)


@dataclass(frozen=True)
class EndpointScaling:
    min_capacity: int
    max_capacity: int
    invocations_per_instance: int


@dataclass(frozen=True)
class EndpointRollout:
    """Blue/green traffic shifting for a new endpoint config, rolled back on alarms.

    ``traffic_routing`` is CANARY (one step of ``step_percentage`` of the green fleet, then
    the rest), LINEAR (steps of ``step_percentage``) or ALL_AT_ONCE; every step and the
    final bake last ``bake``. ``latency_p99_ms`` is the model latency that rolls back.
    """

    traffic_routing: str
    step_percentage: int
    bake: Duration
    latency_p99_ms: int

    @property
    def traffic_steps(self) -> int:
        return {
            "CANARY": 2,
            "LINEAR": math.ceil(100 / self.step_percentage),
            "ALL_AT_ONCE": 1,
        }[self.traffic_routing]

    @property
    def maximum_execution_timeout(self) -> int:
        """Seconds: provisioning, a bake per step and the final bake, within SageMaker's range."""
        seconds = GREEN_FLEET_PROVISIONING.to_seconds() + self.bake.to_seconds() * (
            self.traffic_steps + 1
        )
        return min(max(int(seconds), 600), 28_800)


@dataclass(frozen=True)
class EndpointProps:
    """What the endpoint serves (``record``) and how: the project bucket holds an s3://
    artifact and receives the data capture, encrypted with ``encryption_key`` (which also
    encrypts the endpoint's storage); the container logs go to a group of ``project_logs``."""

    record: ModelRecord
    bucket: s3.IBucket
    encryption_key: kms.IKey
    instance_type: str
    instance_count: int
    capture_sampling_percentage: int
    scaling: EndpointScaling
    rollout: EndpointRollout
    project_logs: ProjectLogs
    capture_prefix: str = CAPTURE_PREFIX


@dataclass(frozen=True)
class EndpointRef:
    """What a caller needs: the name to invoke and the ARN to be granted ``InvokeEndpoint``."""

    name: str
    arn: str


def endpoint_metric(
    endpoint_name: str,
    metric_name: str,
    *,
    statistic: str,
    period: Duration,
    label: str | None = None,
) -> cloudwatch.Metric:
    """One metric SageMaker publishes for the endpoint's only variant."""
    return cloudwatch.Metric(
        namespace=ENDPOINT_METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"EndpointName": endpoint_name, "VariantName": VARIANT_NAME},
        statistic=statistic,
        period=period,
        label=label,
    )


class ClassifierEndpoint(Construct):
    """Serves one model record on a real-time endpoint whose name never changes.

    A new artifact yields a new model and endpoint config (both replaced), and the endpoint
    is updated in place to the new config, so `cdk deploy` rolls it while clients keep the
    name. The execution role reads only this record's artifact and writes only the capture
    prefix.
    """

    def __init__(self, scope: Construct, construct_id: str, props: EndpointProps) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        record, bucket, encryption_key = props.record, props.bucket, props.encryption_key
        capture_prefix = props.capture_prefix
        self.endpoint_name = f"{Aws.STACK_NAME}-classifier"
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Runs the bicycle/motorcycle classifier endpoint",
        )
        model_data_url = self._grant_artifact(record, bucket, encryption_key)
        # The registry account of AWS Deep Learning Containers per region is a CDK region
        # fact: the template stays environment-agnostic and synth makes no AWS call.
        image_account = stack.regional_fact(FactName.DLC_REPOSITORY_ACCOUNT)
        image_uri = (
            f"{image_account}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/"
            f"{record.image_repository}:{record.image_tag}"
        )
        self._grant_container_basics(stack, image_account, record.image_repository)

        bucket.grant_put(self.role, f"{capture_prefix}*")
        encryption_key.grant_encrypt(self.role)

        # SageMaker writes the endpoint's container logs here; owning the group gives it a
        # retention and removes it on `cdk destroy`.
        self.log_group = props.project_logs.log_group(
            self, "Logs", log_group_name=f"/aws/sagemaker/Endpoints/{self.endpoint_name}"
        )

        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            enable_network_isolation=True,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri,
                model_data_url=model_data_url,
                environment={
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                    "SAGEMAKER_REGION": Aws.REGION,
                },
            ),
        )
        self.model.node.add_dependency(self.role)

        self.capture_destination = f"s3://{bucket.bucket_name}/{capture_prefix.rstrip('/')}"
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            kms_key_id=encryption_key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    model_name=self.model.attr_model_name,
                    instance_type=props.instance_type,
                    initial_instance_count=props.instance_count,
                    initial_variant_weight=1,
                )
            ],
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=props.capture_sampling_percentage,
                destination_s3_uri=self.capture_destination,
                kms_key_id=encryption_key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
                ],
                capture_content_type_header=(
                    sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                        json_content_types=["application/json"]
                    )
                ),
            ),
        )

        self.rollback_alarms = self._rollback_alarms(props.rollout)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            # Keep the instance count that autoscaling chose when a new config rolls out.
            retain_all_variant_properties=True,
            exclude_retained_variant_properties=[
                sagemaker.CfnEndpoint.VariantPropertyProperty(
                    variant_property_type="DataCaptureConfig"
                )
            ],
            deployment_config=self._deployment_config(props.rollout),
        )
        self.endpoint.node.add_dependency(self.role, self.log_group)
        self.endpoint_arn = self.endpoint.ref
        self.reference = EndpointRef(name=self.endpoint.attr_endpoint_name, arn=self.endpoint_arn)

        self.scalable_target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint.attr_endpoint_name}/variant/{VARIANT_NAME}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=props.scaling.min_capacity,
            max_capacity=props.scaling.max_capacity,
        )
        self.scalable_target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=props.scaling.invocations_per_instance,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=Duration.minutes(5),
            scale_out_cooldown=Duration.minutes(1),
        )

    def _rollback_alarms(self, rollout: EndpointRollout) -> list[cloudwatch.Alarm]:
        """Alarms SageMaker watches while it shifts traffic to a new config (and bakes it).

        They watch the endpoint by its name, which is known without a reference to the
        endpoint, so the endpoint can depend on them. Quick to fire (one-minute periods, two
        of three), silent without traffic: they decide a rollback, they page nobody.
        """
        errors = cloudwatch.Alarm(
            self,
            "RollbackOnErrors",
            alarm_name=f"{self.endpoint_name}-rollback-5xx-errors",
            alarm_description="Rolls a blue/green endpoint update back: the model returns 5XX",
            metric=endpoint_metric(
                self.endpoint_name,
                "Invocation5XXErrors",
                statistic=cloudwatch.Stats.SUM,
                period=Duration.minutes(1),
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        latency = cloudwatch.Alarm(
            self,
            "RollbackOnLatency",
            alarm_name=f"{self.endpoint_name}-rollback-p99-latency",
            alarm_description=(
                f"Rolls a blue/green endpoint update back: model latency p99 above "
                f"{rollout.latency_p99_ms} ms"
            ),
            # ModelLatency is in microseconds.
            metric=endpoint_metric(
                self.endpoint_name,
                "ModelLatency",
                statistic=cloudwatch.Stats.p(99),
                period=Duration.minutes(1),
            ),
            threshold=rollout.latency_p99_ms * 1000,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        return [errors, latency]

    def _deployment_config(
        self, rollout: EndpointRollout
    ) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
        step = sagemaker.CfnEndpoint.CapacitySizeProperty(
            type="CAPACITY_PERCENT", value=rollout.step_percentage
        )
        bake_seconds = int(rollout.bake.to_seconds())
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                    type=rollout.traffic_routing,
                    wait_interval_in_seconds=bake_seconds,
                    canary_size=step if rollout.traffic_routing == "CANARY" else None,
                    linear_step_size=step if rollout.traffic_routing == "LINEAR" else None,
                ),
                termination_wait_in_seconds=bake_seconds,
                maximum_execution_timeout_in_seconds=rollout.maximum_execution_timeout,
            ),
            auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                alarms=[
                    sagemaker.CfnEndpoint.AlarmProperty(alarm_name=alarm.alarm_name)
                    for alarm in self.rollback_alarms
                ]
            ),
        )

    def _grant_artifact(
        self, record: ModelRecord, bucket: s3.IBucket, encryption_key: kms.IKey
    ) -> str:
        """Grant reading exactly the model artifact; returns its S3 URL."""
        if record.is_local_artifact:
            asset = s3_assets.Asset(self, "ModelArtifact", path=record.model_data_url)
            # Not asset.grant_read: that reads the whole CDK asset bucket, every app's assets.
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[
                        f"arn:{Aws.PARTITION}:s3:::{asset.s3_bucket_name}/{asset.s3_object_key}"
                    ],
                )
            )
            return asset.s3_object_url
        bucket_name, _, key = record.model_data_url.removeprefix("s3://").partition("/")
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"arn:{Aws.PARTITION}:s3:::{bucket_name}/{key}"],
            )
        )
        # Artifacts written by training into the project bucket are encrypted with its key.
        encryption_key.grant_decrypt(self.role)
        return record.model_data_url

    def _grant_container_basics(
        self, stack: Stack, image_account: str, image_repository: str
    ) -> None:
        """Pull the image, write container logs and publish endpoint metrics."""
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[
                    stack.format_arn(
                        service="ecr",
                        account=image_account,
                        resource="repository",
                        resource_name=image_repository,
                    )
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"/aws/sagemaker/Endpoints/{self.endpoint_name}:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
