# ruff: noqa: E402  (the environment and sys.path are set before the imports they affect)
"""Local endpoint vs the inference functions in-process, measured side by side in one run.

    python bench/endpoint.py [--model build/model/model-record.json] [--requests 200]
                             [--images DIR]

Each round times one request both ways on the same image, alternating, so both see the same
machine load: in-process is ``output_fn(predict_fn(input_fn(body), model))`` of the archive's
own ``code/inference.py``; the endpoint is ``sagemaker-runtime`` InvokeEndpoint through boto3
over HTTP with data capture on (as deployed). Prints p50/p99 latency and their ratio (target
<= 3), then throughput in images/s with ``--concurrency`` client threads. The images are 50 of
the staged 32x32 test PNGs, or 50 spread over ``--images DIR`` (PNG and JPEG files, in
subfolders too: ``../shared/data/real-photos-dev`` measures photo-size requests). With
``--as-serialized`` each image is first what the workflow sends: the serialize Lambda's JPEG of
at most 384 px (docs/real-photos.md).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the local mode sets it, before torch

import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from PIL import Image

from bench.options import add_model_argument, add_rounds, bench_parser
from bench.workflow_images import as_serialized
from emulator.capture import CaptureConfig
from emulator.endpoint import LocalEndpoint
from emulator.inference_model import InferenceModel
from training.evaluate_photos import CONTENT_TYPES

ENDPOINT = "bench-endpoint"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass(frozen=True)
class LatencyTable:
    """Two paths side by side: a row each (its label ``width`` wide, p50 and p99 ms to
    ``decimals``), then ``ratio``, the second path's p50 and p99 over the first's, against
    ``target``."""

    width: int
    decimals: int
    ratio: str
    target: int

    def show(self, base: tuple[str, list[float]], other: tuple[str, list[float]]) -> None:
        p50 = [statistics.median(ms) for _, ms in (base, other)]
        p99 = [percentile(ms, 0.99) for _, ms in (base, other)]
        width, decimals = self.width, self.decimals
        print(f"{'':{width}}{'p50 ms':>10}{'p99 ms':>10}")
        for (label, _), median, tail in zip((base, other), p50, p99, strict=True):
            print(f"{label:{width}}{median:>10.{decimals}f}{tail:>10.{decimals}f}")
        print(
            f"ratio {self.ratio}: p50 {p50[1] / p50[0]:.2f}, p99 {p99[1] / p99[0]:.2f} "
            f"(target <= {self.target})"
        )


LATENCIES = LatencyTable(width=24, decimals=2, ratio="endpoint/in-process", target=3)


def request_images(model: Path, images: Path | None) -> list[tuple[bytes, str]]:
    """(body, content type) of 50 images spread over the folder, in file-name order."""
    folders = (
        [images]
        if images
        else [REPO_ROOT / "build" / "data" / "test", model.parent / "data" / "test"]
    )
    for folder in folders:
        files = sorted(
            path
            for path in (folder.rglob("*") if folder.is_dir() else [])
            if path.suffix.lower() in (".png", ".jpg", ".jpeg")
        )
        if files:
            return [
                (path.read_bytes(), content_type(path))
                for path in files[:: max(1, len(files) // 50)][:50]
            ]
    raise SystemExit(f"no PNG or JPEG images under {folders}: pass --images DIR")


def content_type(path: Path) -> str:
    with Image.open(path) as image:
        return CONTENT_TYPES.get(image.format or "", "application/x-image")


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    add_model_argument(parser)
    parser.add_argument(
        "--images", type=Path, help="folder of PNG/JPEG images (default: staged test)"
    )
    add_rounds(parser, "--requests", 200, warmup=20)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="client threads for the throughput run (default: 2)",
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="length of each throughput run (default: 5)"
    )
    parser.add_argument(
        "--as-serialized",
        action="store_true",
        help="send each image as the workflow does: serialize's JPEG of at most 384 px",
    )
    args = parser.parse_args(argv)

    import boto3
    from botocore.config import Config

    bodies = request_images(args.model, args.images)
    if args.as_serialized:
        bodies = [as_serialized(body) for body, _ in bodies]
    model = InferenceModel(args.model)
    hooks = model.module

    def in_process(request: tuple[bytes, str]) -> bytes:
        data = hooks.input_fn(*request)
        return hooks.output_fn(hooks.predict_fn(data, model.model), "application/json")

    with (
        tempfile.TemporaryDirectory(prefix="bench-capture-") as capture_dir,
        LocalEndpoint(
            model, endpoint_name=ENDPOINT, capture=CaptureConfig(local_dir=Path(capture_dir))
        ) as endpoint,
    ):
        client = boto3.client(
            "sagemaker-runtime",
            region_name="us-east-1",
            endpoint_url=endpoint.url,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=Config(retries={"total_max_attempts": 1}, max_pool_connections=32),
        )

        def over_http(request: tuple[bytes, str]) -> bytes:
            body, content_type = request
            return client.invoke_endpoint(
                EndpointName=ENDPOINT,
                ContentType=content_type,
                Accept="application/json",
                Body=body,
            )["Body"].read()

        local_ms: list[float] = []
        endpoint_ms: list[float] = []
        for index in range(args.warmup + args.requests):
            body = bodies[index % len(bodies)]
            for call, sink in ((in_process, local_ms), (over_http, endpoint_ms)):
                started = time.perf_counter()
                call(body)
                if index >= args.warmup:
                    sink.append((time.perf_counter() - started) * 1000)

        def throughput(call, threads: int) -> float:
            done = [0] * threads
            deadline = time.perf_counter() + args.seconds

            def worker(slot: int) -> None:
                while time.perf_counter() < deadline:
                    call(bodies[done[slot] % len(bodies)])
                    done[slot] += 1

            workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
            started = time.perf_counter()
            for thread in workers:
                thread.start()
            for thread in workers:
                thread.join()
            return sum(done) / (time.perf_counter() - started)

        local_rate = throughput(in_process, 1)
        endpoint_rate_1 = throughput(over_http, 1)
        endpoint_rate_n = throughput(over_http, args.concurrency)
    model.close()

    print(f"requests: {args.requests} per path, {len(bodies)} distinct images")
    LATENCIES.show(("in-process hooks", local_ms), ("local endpoint (HTTP)", endpoint_ms))
    print(
        f"throughput: in-process {local_rate:.0f} images/s (1 thread); endpoint "
        f"{endpoint_rate_1:.0f} images/s (1 client), {endpoint_rate_n:.0f} images/s "
        f"({args.concurrency} clients)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
