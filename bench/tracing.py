# ruff: noqa: E402  (sys.path is set before the imports it affects)
"""serialize_image with X-Ray tracing on vs off, side by side in one run, plus its peak memory.

    python bench/tracing.py [--rounds 40] [--cdk-out cdk.out]

The handler is imported in this process as Lambda's init imports it (``LAMBDA_TASK_ROOT``
set, so Powertools' Tracer is on and botocore patched), gets a fresh ``_X_AMZN_TRACE_ID`` per
call and reads a generated 3 MB JPEG from moto S3. Each round times one call with tracing on
(datagrams to a loopback daemon), one with the SDK disabled (what ``POWERTOOLS_TRACE_DISABLED``
leaves) and one with the old ``read_object`` that recorded its bytes. Prints p50 of each, the
on/off ratio (target <= 1.2), how many read_object subsegments arrived and the largest
datagram.

Then, in a fresh process with tracing on, one call on a generated 12 MP JPEG (S3 answered by
a botocore Stubber, so no moto in the process): peak RSS (``VmHWM``) and the tracemalloc peak
of the call, against the function's ``MemorySize`` in the synthesized template (synthesized
here without bundling unless ``--cdk-out`` is given).
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.endpoint import percentile
from bench.options import add_rounds, bench_parser
from training.framework import FRAMEWORK_VERSION, LOCAL_INFERENCE_IMAGE, PY_VERSION
from training.model.network import CLASS_NAMES
from training.record import RECORD_NAME, ModelRecord

SERVICE = "serialize_image"
MODES = ("on", "off", "defect")
BUCKET = "bench-images"
KEY = "incoming/photo.jpg"
FAKE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": SERVICE,
    "POWERTOOLS_METRICS_NAMESPACE": "SconesUnlimited",  # as the template sets them
}
CONTEXT = SimpleNamespace(
    function_name=SERVICE,
    function_version="$LATEST",
    invoked_function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{SERVICE}",
    memory_limit_in_mb=512,
    aws_request_id="00000000-0000-0000-0000-000000000000",
)
S3_RECORD = ModelRecord(
    model_data_url="s3://bench-bucket/models/bench/output/model.tar.gz",
    image_uri=LOCAL_INFERENCE_IMAGE,
    framework_version=FRAMEWORK_VERSION,
    py_version=PY_VERSION,
    class_names=CLASS_NAMES,
    metrics={},
    training_job_name="bench",
)
_MEMORY_CHILD = """
import io, json, sys, tracemalloc
from types import SimpleNamespace
from botocore.response import StreamingBody
from botocore.stub import Stubber
sys.path.insert(0, {code_dir!r})
import handler
import object_reader

def peak_rss_kib():  # VmHWM: this process's own high-water mark (ru_maxrss survives exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

client = object_reader.s3_client()
before = peak_rss_kib()
tracemalloc.start()
data = open({photo!r}, "rb").read()  # the object's bytes, as the GetObject stream yields them
stub = Stubber(client)
stub.add_response("head_object", {{"ContentLength": len(data)}})
body = StreamingBody(io.BytesIO(data), len(data))
stub.add_response("get_object", {{"Body": body, "ContentLength": len(data)}})
stub.activate()
context = SimpleNamespace(function_name="serialize", function_version="1",
    invoked_function_arn="arn", memory_limit_in_mb=512, aws_request_id="0")
result = handler.lambda_handler({{"s3_bucket": "b", "s3_key": "k.jpg"}}, context)
assert result["source"]["width"] == 4032, result["source"]
_, traced = tracemalloc.get_traced_memory()
print(json.dumps({{"before_kib": before, "peak_kib": peak_rss_kib(), "tracemalloc_peak": traced}}))
"""


def photo_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """Gradients under noise: about 1 byte per pixel as a quality-95 JPEG, like a phone photo."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    pixels = (x * np.float32([1.0, 0.5, 0.2]) + y * np.float32([0.1, 0.4, 0.8])) / 1.5
    pixels = pixels + rng.normal(0, 50, (height, width, 3)).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def function_memory_mb(cdk_out: Path | None) -> int:
    """``MemorySize`` of the serialize function in the synthesized workflow template."""
    from emulator.assembly import synthesize

    with tempfile.TemporaryDirectory() as workdir:
        if cdk_out is None:
            record = S3_RECORD.write(Path(workdir) / RECORD_NAME)
            context = {"model_record": str(record), "aws:cdk:bundling-stacks": []}
            cdk_out = synthesize(REPO_ROOT, Path(workdir) / "cdk.out", context)
        template = json.loads((cdk_out / "SconesWorkflow.template.json").read_text())
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        variables = properties.get("Environment", {}).get("Variables", {})
        if (
            resource["Type"] == "AWS::Lambda::Function"
            and variables.get("POWERTOOLS_SERVICE_NAME") == SERVICE
        ):
            return int(properties.get("MemorySize", 128))
    raise SystemExit(f"no {SERVICE} function in {cdk_out}")


def load_handler() -> ModuleType:
    """serialize's handler.py imported as the Lambda runtime's init does (Tracer on)."""
    code_dir = str(REPO_ROOT / "lambda_src" / SERVICE)
    os.environ["LAMBDA_TASK_ROOT"] = code_dir
    sys.path.insert(0, code_dir)  # the modules beside the handler, as in Lambda
    spec = importlib.util.spec_from_file_location("bench_serialize", Path(code_dir, "handler.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Measured:
    """Per-call milliseconds by mode, how many calls' read_object subsegment arrived, and the
    largest datagram received."""

    milliseconds: dict[str, list[float]] = field(default_factory=dict)
    read_object_arrived: dict[str, int] = field(default_factory=dict)
    largest_datagram: int = 0


def time_calls(rounds: int, warmup: int, photo: bytes) -> Measured:
    """Tracing on, off, and on with read_object recording its bytes, alternating per round."""
    import boto3
    from aws_xray_sdk import global_sdk_config
    from moto import mock_aws

    from emulator.xray import XRayListener, invocation_trace_header, lambda_recorder

    os.environ.update(FAKE_ENVIRONMENT)
    measured = Measured(milliseconds={mode: [] for mode in MODES})
    roots: dict[str, list[str]] = {mode: [] for mode in MODES}
    event = {"s3_bucket": BUCKET, "s3_key": KEY}
    with (
        mock_aws(),
        XRayListener() as listener,
        lambda_recorder(listener.address),
        open(os.devnull, "w") as devnull,
        redirect_stdout(devnull),  # the handler's logs and metrics
    ):
        os.environ["AWS_XRAY_DAEMON_ADDRESS"] = listener.address
        handler = load_handler()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=photo)
        fixed_read = handler.read_object
        recording_read = handler.tracer.capture_method(fixed_read.__wrapped__)

        def call(mode: str, timed: bool) -> None:
            global_sdk_config.set_sdk_enabled(mode != "off")
            handler.read_object = recording_read if mode == "defect" else fixed_read
            header = invocation_trace_header()
            os.environ["_X_AMZN_TRACE_ID"] = header
            started = time.perf_counter()
            handler.lambda_handler(event, CONTEXT)
            if timed:
                measured.milliseconds[mode].append((time.perf_counter() - started) * 1000)
                roots[mode].append(header.split(";")[0].removeprefix("Root="))

        for index in range(warmup + rounds):
            for mode in MODES:
                call(mode, timed=index >= warmup)
        handler.read_object = fixed_read
        listener.wait_for(lambda received: False, timeout=0.5)  # the last datagrams
        traces = listener.traces()
        measured.largest_datagram = listener.largest()
    for mode in ("on", "defect"):
        measured.read_object_arrived[mode] = sum(
            any(document["name"].endswith(".read_object") for document in traces.get(root, []))
            for root in roots[mode]
        )
    return measured


def peak_memory(photo: bytes) -> dict[str, int]:
    """One traced call on ``photo`` in a fresh process (S3 answered by a botocore Stubber)."""
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "photo.jpg"
        path.write_bytes(photo)
        code_dir = str(REPO_ROOT / "lambda_src" / SERVICE)
        env = {
            **os.environ,
            "LAMBDA_TASK_ROOT": code_dir,
            "_X_AMZN_TRACE_ID": "Root=1-00000000-000000000000000000000001;Parent=0000000000000001;"
            "Sampled=1",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:9",  # discard
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            **FAKE_ENVIRONMENT,
        }
        script = _MEMORY_CHILD.format(code_dir=code_dir, photo=str(path))
        completed = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
        )
    if completed.returncode != 0:
        raise SystemExit(f"memory run failed:\n{completed.stderr}")
    return json.loads(completed.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    add_rounds(parser, "--rounds", 40, warmup=3)
    parser.add_argument("--cdk-out", type=Path, help="a synthesized assembly (default: synth)")
    args = parser.parse_args(argv)
    logging.getLogger("aws_xray_sdk").setLevel(logging.CRITICAL)  # "Failed to send entity"

    photo = photo_jpeg(2048, 1536)
    measured = time_calls(args.rounds, args.warmup, photo)
    timings = measured.milliseconds
    p50 = {mode: statistics.median(timings[mode]) for mode in MODES}
    print(f"serialize_image on a {len(photo) / 1e6:.1f} MB JPEG (2048x1536), {args.rounds} rounds")
    print(f"{'':42}{'p50 ms':>10}{'p99 ms':>10}")
    rows = (
        ("tracing off (SDK disabled)", "off"),
        ("tracing on (loopback daemon)", "on"),
        ("tracing on, read_object recording bytes", "defect"),
    )
    for label, mode in rows:
        print(f"{label:42}{p50[mode]:>10.1f}{percentile(timings[mode], 0.99):>10.1f}")
    print(
        f"ratio on/off: p50 {p50['on'] / p50['off']:.2f} (target <= 1.2); "
        f"recording bytes/off: {p50['defect'] / p50['off']:.1f}"
    )
    arrived = measured.read_object_arrived
    print(
        f"read_object subsegments received: {arrived['on']}/{args.rounds} (recording bytes: "
        f"{arrived['defect']}/{args.rounds}); largest datagram {measured.largest_datagram} bytes"
    )

    memory_mb = function_memory_mb(args.cdk_out)
    big = photo_jpeg(4032, 3024, seed=1)
    used = peak_memory(big)
    peak_mb = used["peak_kib"] / 1024
    print(
        f"12 MP JPEG ({len(big) / 1e6:.1f} MB), tracing on: peak RSS {peak_mb:.0f} MB "
        f"(after imports {used['before_kib'] / 1024:.0f} MB), Python allocations of the call "
        f"peak at {used['tracemalloc_peak'] / 1e6:.0f} MB; MemorySize {memory_mb} MB "
        f"({peak_mb / memory_mb:.0%} of it)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
