"""The local endpoint, through a real boto3 sagemaker-runtime client."""

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from moto import mock_aws

from emulator.capture import CaptureConfig, read_capture_file
from emulator.endpoint import Fault, LocalEndpoint
from emulator.errors import ModelLoadError
from emulator.inference_model import InferenceModel
from tests.emulator.emulator_fixtures import build_stub_archive

ENDPOINT = "scones-test"
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "capture-samples"


def runtime_client(monkeypatch, endpoint: LocalEndpoint, **config):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", endpoint.url)
    retries = {"total_max_attempts": 1}
    return boto3.client("sagemaker-runtime", config=Config(retries=retries, **config))


@pytest.fixture
def endpoint(stub_archive):
    with LocalEndpoint(stub_archive, endpoint_name=ENDPOINT) as running:
        yield running


def test_invoke_endpoint_runs_the_archive_inference_hooks(monkeypatch, endpoint):
    client = runtime_client(monkeypatch, endpoint)
    response = client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=b"12345")
    assert json.loads(response["Body"].read()) == [0.5, 0.5]
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"


def test_a_model_record_names_the_archive(tmp_path, stub_archive):
    record = tmp_path / "record.json"
    record.write_text(json.dumps({"model_data_url": str(stub_archive)}))
    model = InferenceModel(record)
    try:
        assert model.invoke(b"123", "image/png", None).body == b"[0.3, 0.7]"
    finally:
        model.close()


def test_a_remote_or_missing_model_is_a_clear_error(tmp_path):
    record = tmp_path / "record.json"
    record.write_text(json.dumps({"model_data_url": "s3://bucket/model.tar.gz"}))
    with pytest.raises(ModelLoadError, match="download it"):
        InferenceModel(record)
    with pytest.raises(ModelLoadError, match="does not exist"):
        InferenceModel(tmp_path / "missing.tar.gz")


def test_two_archives_load_one_after_the_other(tmp_path, stub_archive):
    first = InferenceModel(stub_archive)
    assert first.invoke(b"1", "image/png", None).body == b"[0.1, 0.9]"
    first.close()
    second = InferenceModel(build_stub_archive(tmp_path / "model.tar.gz", bias=0.0))
    try:
        assert second.invoke(b"1", "image/png", None).body == b"[0.0, 1.0]"
    finally:
        second.close()


def test_an_inference_error_with_a_status_code_is_a_model_error(monkeypatch, endpoint):
    client = runtime_client(monkeypatch, endpoint)
    with pytest.raises(client.exceptions.ModelError) as caught:
        client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/plain", Body=b"x")
    response = caught.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 400
    assert response["OriginalMessage"].startswith("unsupported content type text/plain")
    assert "Received client error (400) from primary" in response["Error"]["Message"]


def test_any_other_inference_error_is_a_500_model_error(monkeypatch, endpoint):
    client = runtime_client(monkeypatch, endpoint)
    with pytest.raises(client.exceptions.ModelError) as caught:
        client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=b"explode")
    assert caught.value.response["OriginalStatusCode"] == 500
    assert "the model exploded" in caught.value.response["OriginalMessage"]


def test_an_unknown_endpoint_is_a_validation_error(monkeypatch, endpoint):
    client = runtime_client(monkeypatch, endpoint)
    with pytest.raises(client.exceptions.ValidationError, match="not found"):
        client.invoke_endpoint(EndpointName="other", ContentType="image/png", Body=b"1")


def test_ping_and_the_container_route(endpoint):
    with urllib.request.urlopen(f"{endpoint.url}/ping") as response:
        assert response.status == 200
    request = urllib.request.Request(
        f"{endpoint.url}/invocations", data=b"12", headers={"Content-Type": "text/plain"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 400


def test_injected_faults_then_recovery(monkeypatch, endpoint):
    client = runtime_client(monkeypatch, endpoint, read_timeout=0.3)
    invoke = {"EndpointName": ENDPOINT, "ContentType": "image/png", "Body": b"1"}

    endpoint.inject(Fault.model_error(500), times=2)
    for _ in range(2):
        with pytest.raises(client.exceptions.ModelError) as caught:
            client.invoke_endpoint(**invoke)
        assert caught.value.response["OriginalStatusCode"] == 500
    assert client.invoke_endpoint(**invoke)["Body"].read() == b"[0.1, 0.9]"

    endpoint.inject(Fault.service_unavailable())
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.invoke_endpoint(**invoke)
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"

    endpoint.inject(Fault.throttling())
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.invoke_endpoint(**invoke)
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"

    endpoint.inject(Fault.slow(1.0))
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client.invoke_endpoint(**invoke)

    endpoint.inject(Fault.malformed_body())
    with pytest.raises(json.JSONDecodeError):
        json.loads(client.invoke_endpoint(**invoke)["Body"].read())

    endpoint.go_down()
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        client.invoke_endpoint(**invoke)
    endpoint.come_up()
    assert client.invoke_endpoint(**invoke)["Body"].read() == b"[0.1, 0.9]"

    endpoint.inject(Fault.model_error(503), times=None)
    for _ in range(3):
        with pytest.raises(client.exceptions.ModelError):
            client.invoke_endpoint(**invoke)
    endpoint.clear_faults()
    assert client.invoke_endpoint(**invoke)["ResponseMetadata"]["HTTPStatusCode"] == 200


def _capture_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jsonl"))


def test_capture_writes_sagemaker_jsonl_matching_the_requests(monkeypatch, tmp_path, stub_archive):
    capture = CaptureConfig(local_dir=tmp_path, flush_records=2)
    bodies = [b"\x89PNG-one", b"\x89PNG-three", b"\x89PNG-fifteen"]
    with LocalEndpoint(stub_archive, endpoint_name=ENDPOINT, capture=capture) as endpoint:
        client = runtime_client(monkeypatch, endpoint)
        outputs = [
            client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=body)[
                "Body"
            ].read()
            for body in bodies
        ]
    files = _capture_files(tmp_path)
    assert len(files) == 2
    for path in files:
        relative = path.relative_to(tmp_path).parts
        assert relative[:3] == ("data-capture", ENDPOINT, "AllTraffic")
        assert [len(part) for part in relative[3:7]] == [4, 2, 2, 2]
    records = [record for path in files for record in read_capture_file(path)]
    assert len(records) == 3
    by_input = {base64.b64decode(r["captureData"]["endpointInput"]["data"]): r for r in records}
    for body, output in zip(bodies, outputs, strict=True):
        record = by_input[body]
        assert record["captureData"]["endpointInput"]["observedContentType"] == "image/png"
        assert record["captureData"]["endpointInput"]["encoding"] == "BASE64"
        assert record["captureData"]["endpointOutput"] == {
            "observedContentType": "application/json",
            "mode": "OUTPUT",
            "data": output.decode(),
            "encoding": "JSON",
        }
        assert record["eventVersion"] == "0"


def _shape(value):
    if isinstance(value, dict):
        return [(key, _shape(item)) for key, item in value.items()]
    return type(value).__name__


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="needs ../shared/data/capture-samples")
def test_capture_records_have_the_shape_of_real_sagemaker_records(tmp_path, stub_archive):
    real = read_capture_file(next(SAMPLES.rglob("*.jsonl")))[0]
    capture = CaptureConfig(local_dir=tmp_path)
    with LocalEndpoint(stub_archive, endpoint_name=ENDPOINT, capture=capture) as endpoint:
        ours = endpoint.capture_writer(ENDPOINT).record(
            b"png", "image/png", b"[0.1, 0.9]", "application/json"
        )
    assert _shape(ours) == _shape(real)
    line = _capture_files(tmp_path)[0].read_text().splitlines()[0]
    assert line == json.dumps(json.loads(line), separators=(",", ":"))


def test_capture_honours_the_sampling_percentage(monkeypatch, tmp_path, stub_archive):
    for percentage, expected in ((0, 0), (100, 20)):
        root = tmp_path / str(percentage)
        capture = CaptureConfig(local_dir=root, sampling_percentage=percentage, seed=7)
        with LocalEndpoint(stub_archive, endpoint_name=ENDPOINT, capture=capture) as endpoint:
            client = runtime_client(monkeypatch, endpoint)
            for _ in range(20):
                client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=b"1")
        records = [r for path in _capture_files(root) for r in read_capture_file(path)]
        assert len(records) == expected
    half = CaptureConfig(local_dir=tmp_path / "half", sampling_percentage=50, seed=7)
    with LocalEndpoint(stub_archive, endpoint_name=ENDPOINT, capture=half) as endpoint:
        drawn = sum(endpoint.capture_writer(ENDPOINT).sampled() for _ in range(400))
    assert 150 < drawn < 250


def test_capture_to_a_moto_bucket(monkeypatch, stub_archive):
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="scones")
        capture = CaptureConfig(s3_bucket="scones", key_prefix="data-capture")
        with LocalEndpoint(stub_archive, endpoint_name=ENDPOINT, capture=capture) as endpoint:
            client = runtime_client(monkeypatch, endpoint)
            client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=b"12")
            keys = endpoint.flush_capture()
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket="scones")["Contents"]]
        assert listed == keys
        assert listed[0].startswith(f"data-capture/{ENDPOINT}/AllTraffic/")
        body = s3.get_object(Bucket="scones", Key=listed[0])["Body"].read().decode()
        record = json.loads(body.splitlines()[0])
        assert record["captureData"]["endpointOutput"]["data"] == "[0.2, 0.8]"
