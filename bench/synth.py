"""Synth time of the whole app against a one-bucket app, measured side by side.

Each synth runs in a fresh process (jsii start-up included), alternating the two apps so
that machine noise hits both alike. Lambda bundles are cached (build/lambda-deps) after a
warm-up run, as they are on a developer's machine. Target: ratio under 1.5.

    .venv/bin/python bench/synth.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ONE_BUCKET_APP = """
import stacks  # the same Node.js for jsii as the full app
import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

app = cdk.App()
stack = cdk.Stack(app, "OneBucket")
s3.Bucket(stack, "Bucket")
app.synth()
"""
RECORD = {
    "model_data_url": "s3://bench-bucket/models/bench/output/model.tar.gz",
    "image_uri": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312",
    "framework_version": "2.6.0",
    "metrics": {},
    "training_job_name": "bench",
}


def timed_synth(command: list[str], outdir: Path, context: dict) -> float:
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(context)}
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="synths of each app (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        record = Path(workdir) / "model-record.json"
        record.write_text(json.dumps(RECORD))
        full = ([sys.executable, "app.py"], {"model_record": str(record)})
        bucket = ([sys.executable, "-c", ONE_BUCKET_APP], {})
        timed_synth(*full[:1], Path(workdir) / "warm-up", full[1])
        times: dict[str, list[float]] = {"full app": [], "one-bucket app": []}
        for round_ in range(args.rounds):
            times["full app"].append(timed_synth(full[0], Path(workdir) / f"full{round_}", full[1]))
            times["one-bucket app"].append(
                timed_synth(bucket[0], Path(workdir) / f"bucket{round_}", bucket[1])
            )
    for name, samples in times.items():
        print(
            f"{name:15s} median {statistics.median(samples):6.2f} s  "
            f"(min {min(samples):.2f}, max {max(samples):.2f}, n={len(samples)})"
        )
    ratio = statistics.median(times["full app"]) / statistics.median(times["one-bucket app"])
    print(f"ratio full/one-bucket: {ratio:.2f} (target < 1.5)")


if __name__ == "__main__":
    main()
