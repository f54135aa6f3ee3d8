"""Synth time of the whole app against a one-bucket app, measured side by side.

Each synth runs in a fresh process (jsii start-up included), alternating the two apps so
that machine noise hits both alike; both get the context of cdk.json. Lambda bundles are
cached (build/lambda-deps) after a warm-up run, as on a developer's machine. Wall time and
CPU time (user + system of the process and its Node.js) are both reported: CPU time is less
sensitive to other jobs on a shared machine.

The comparison runs twice: with CDK's built-in CloudFormation template validation (the
default of `cdk synth`), and without it (`CDK_VALIDATION=false`), whose cost grows with the
number of resources. Target: ratio under 1.5.

    .venv/bin/python bench/synth.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from stacks.application import cdk_json_context  # noqa: E402
from training.framework import FRAMEWORK_VERSION, LOCAL_INFERENCE_IMAGE  # noqa: E402
from training.model.network import CLASS_NAMES  # noqa: E402
from training.record import RECORD_NAME, ModelRecord  # noqa: E402

ONE_BUCKET_APP = """
import stacks  # the same Node.js for jsii as the full app
import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

app = cdk.App()
stack = cdk.Stack(app, "OneBucket")
s3.Bucket(stack, "Bucket")
app.synth()
"""
RECORD = ModelRecord(
    model_data_url="s3://bench-bucket/models/bench/output/model.tar.gz",
    image_uri=LOCAL_INFERENCE_IMAGE,
    framework_version=FRAMEWORK_VERSION,
    class_names=CLASS_NAMES,
    metrics={},
    training_job_name="bench",
)


def timed_synth(command: list[str], outdir: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, Node.js included) of one synth process."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**env, "CDK_OUTDIR": str(outdir)},
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return wall, cpu


def compare(apps: dict[str, list[str]], env: dict[str, str], rounds: int, workdir: Path) -> None:
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
    for round_ in range(rounds):
        for name, command in apps.items():
            runs[name].append(timed_synth(command, workdir / f"{name}-{round_}", env))
    medians = {}
    for name, samples in runs.items():
        walls, cpus = [wall for wall, _ in samples], [cpu for _, cpu in samples]
        medians[name] = (statistics.median(walls), statistics.median(cpus))
        print(
            f"  {name:15s} wall median {medians[name][0]:6.2f} s (min {min(walls):.2f}, "
            f"max {max(walls):.2f}); CPU median {medians[name][1]:6.2f} s; n={len(samples)}"
        )
    full_app, one_bucket = medians["full app"], medians["one-bucket app"]
    print(
        f"  ratio full/one-bucket: wall {full_app[0] / one_bucket[0]:.2f}, "
        f"CPU {full_app[1] / one_bucket[1]:.2f} (target < 1.5)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="synths of each app (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        record = RECORD.write(workdir / RECORD_NAME)
        context = {**cdk_json_context(), "model_record": str(record)}
        env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context)}
        apps = {
            "full app": [sys.executable, "app.py"],
            "one-bucket app": [sys.executable, "-c", ONE_BUCKET_APP],
        }
        timed_synth(apps["full app"], workdir / "warm-up", env)
        for title, validation in (("with", "true"), ("without", "false")):
            print(f"{title} CDK's built-in template validation (CDK_VALIDATION={validation}):")
            compare(apps, {**env, "CDK_VALIDATION": validation}, args.rounds, workdir / title)


if __name__ == "__main__":
    main()
