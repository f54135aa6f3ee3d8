import pytest

from stacks.application import cdk_json_context
from stacks.config import ConfigError, Settings


def settings(**overrides) -> Settings:
    context = {**cdk_json_context(), **overrides}
    return Settings.from_context(context.get)


def test_cdk_json_defaults_are_valid():
    defaults = settings()
    assert defaults.confidence_threshold == pytest.approx(0.75)
    assert defaults.data_capture_sampling_percentage == 100
    assert defaults.ssm_prefix == "/scones-unlimited"


def test_cli_strings_are_parsed():
    parsed = settings(
        confidence_threshold="0.9", endpoint_instance_count="2", autoscaling_max_capacity="3"
    )
    assert parsed.confidence_threshold == pytest.approx(0.9)
    assert parsed.endpoint_instance_count == 2


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("confidence_threshold", 1.5, "(0, 1]"),
        ("confidence_threshold", 0, "(0, 1]"),
        ("confidence_threshold", "high", "(0, 1]"),
        ("data_capture_sampling_percentage", 101, "[0, 100]"),
        ("data_capture_sampling_percentage", -1, "[0, 100]"),
        ("data_capture_sampling_percentage", 50.5, "[0, 100]"),
        ("endpoint_instance_type", "m5.large", "ml.m5.large"),
        ("endpoint_instance_type", "ml.m5.huge", "ml.m5.large"),
        ("log_retention_days", 31, "30"),
        ("incoming_expiration_days", 0, "[1, 3650]"),
        ("project_name", "Scones Unlimited", "scones-unlimited"),
        ("alarm_email", "not-an-address", "ops@example.com"),
        ("low_confidence_rate_limit", 0, "(0, 1]"),
        ("workflow_failure_rate_limit", 1.2, "(0, 1]"),
        ("endpoint_latency_p99_ms", 0, "[1, 60000]"),
        ("drift_monitor_rate_minutes", 1, "[5, 1440]"),
        ("drift_window_minutes", 20000, "[5, 10080]"),
        ("drift_threshold", 1, "(0, 0.99]"),
        ("drift_min_records", 0, "[1, 100000]"),
        ("batch_mode", "yes", "true, false"),
        ("batch_max_concurrency", 0, "[1, 1000]"),
        ("batch_tolerated_failure_percentage", 101, "[0, 100]"),
        ("rollout_traffic_routing", "BLUE", "CANARY, LINEAR, ALL_AT_ONCE"),
        ("rollout_step_percentage", 60, "[10, 50]"),
        ("rollout_bake_minutes", 0, "[1, 60]"),
        ("classify_reserved_concurrency", 0, "[1, 1000]"),
        ("classify_reserved_concurrency", "many", "[1, 1000]"),
        ("capacity_retry_minutes", 0, "[1, 50]"),
        ("capacity_retry_minutes", "long", "[1, 50]"),
    ],
)
def test_bad_value_names_key_value_and_range(key, value, allowed):
    with pytest.raises(ConfigError) as raised:
        settings(**{key: value})
    message = str(raised.value)
    assert "\n" not in message
    assert key in message
    assert repr(value) in message or str(value) in message
    assert allowed in message


def test_autoscaling_bounds_must_hold_the_initial_count():
    with pytest.raises(ConfigError, match="autoscaling_min_capacity=3 exceeds"):
        settings(autoscaling_min_capacity=3, autoscaling_max_capacity=2)
    with pytest.raises(ConfigError, match="endpoint_instance_count=5 is outside"):
        settings(endpoint_instance_count=5)


def test_missing_key_says_where_to_set_it():
    with pytest.raises(ConfigError, match="context confidence_threshold is not set"):
        settings(confidence_threshold=None)


def test_monitoring_defaults():
    defaults = settings()
    assert defaults.alarm_email is None
    assert defaults.drift_monitor_rate_minutes == 60
    assert defaults.batch_mode is True
    assert defaults.rollout_traffic_routing == "CANARY"
    assert settings(alarm_email="ops@example.com", batch_mode="false").batch_mode is False


def test_drift_window_must_cover_the_schedule():
    with pytest.raises(ConfigError, match="drift_window_minutes=30 is shorter than"):
        settings(drift_window_minutes=30, drift_monitor_rate_minutes=60)


def test_the_workflow_must_outlast_its_capacity_retry():
    assert settings().capacity_retry_minutes == 15
    with pytest.raises(ConfigError, match="workflow_timeout_minutes=15 does not outlast"):
        settings(workflow_timeout_minutes=15)
    shorter = settings(capacity_retry_minutes="5", workflow_timeout_minutes=6)
    assert shorter.capacity_retry_minutes == 5


def test_classify_concurrency_follows_the_endpoint_capacity_unless_set():
    # Saturation is twice the autoscaling target (300/min: 10/s), 0.25 s per call.
    assert settings().classify_reserved_concurrency == 10
    assert settings(autoscaling_max_capacity=1).classify_reserved_concurrency == 3
    assert settings(autoscaling_invocations_per_instance=600).classify_reserved_concurrency == 20
    assert settings(classify_reserved_concurrency="7").classify_reserved_concurrency == 7
