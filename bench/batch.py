# ruff: noqa: E402  (the environment and sys.path are set before the imports they affect)
"""The same N images through a batch (SconesBatch, a Distributed Map) and one by one through
the EventBridge workflow, side by side in one local workflow.

    python bench/batch.py [--model build/model/model-record.json] [--count 500]
                          [--images DIR] [--threshold 0.5]

Both paths run the synthesized definitions with the same functions, endpoint and roles. After
an untimed warm-up (a batch of MaxConcurrency images, which starts that many sandboxes per
function, and a few single uploads), (a) the N images are uploaded under a fresh batch/<run>/
prefix and one batch execution runs them, timed from StartExecution to the results read back
from S3; (b) the same N images are uploaded one at a time under incoming/, each waited for.
Prints items/s of each, their ratio, and the reconciliation: every image has exactly one
outcome in each path (0 lost, 0 duplicated), and the two paths agree on each image's outcome.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the local mode sets it, before torch

import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.options import add_log, add_workflow_options, bench_parser, results_stdout
from emulator.assembly import cached_assembly, model_record_for
from emulator.batch import run_batch, upload_batch
from emulator.workflow import LocalWorkflow


def image_files(images: Path | None) -> list[Path]:
    folders = [images] if images else [REPO_ROOT / "build" / "data" / "test"]
    for folder in folders:
        files = sorted(folder.rglob("*.png")) if folder.is_dir() else []
        if files:
            return files
    raise SystemExit(f"no PNG test images under {folders}: pass --images DIR")


def kind(outcome) -> str:
    return outcome.label if outcome.status == "SUCCEEDED" else f"{outcome.status}:{outcome.error}"


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    add_workflow_options(parser)
    parser.add_argument("--count", type=int, default=500, help="images per path (default: 500)")
    parser.add_argument(
        "--threshold", help="THRESHOLD for the filter function (default: the template's)"
    )
    add_log(parser, help="handlers' logs (default: discarded)")
    args = parser.parse_args(argv)
    if args.count < 1:
        raise SystemExit(f"--count {args.count} is not at least 1")
    logging.getLogger("moto").setLevel(logging.CRITICAL)

    files = image_files(args.images)
    # The same N images in both paths: the folder's images in order, repeated if needed.
    chosen = [files[n % len(files)] for n in range(args.count)]
    names = [f"{n:05d}-{path.name}" for n, path in enumerate(chosen)]
    bodies = [path.read_bytes() for path in chosen]
    record = model_record_for(args.model, Path(os.environ.get("TMPDIR", "/tmp")))
    assembly = args.cdk_out or cached_assembly(record)
    environment = {"THRESHOLD": args.threshold} if args.threshold else {}
    with (
        results_stdout(args.log),
        LocalWorkflow(assembly, record, environment=environment) as workflow,
    ):
        (concurrency,) = [
            state["MaxConcurrency"]
            for state in workflow.batch_definition["States"].values()
            if "ItemProcessor" in state
        ]
        warm_prefix, _ = upload_batch(
            workflow, zip(names[:concurrency], bodies[:concurrency], strict=True)
        )
        run_batch(workflow, warm_prefix)
        for n in range(3):
            workflow.classify_bytes(bodies[n], f"incoming/warm/{n}.png")

        prefix, keys = upload_batch(workflow, zip(names, bodies, strict=True))
        run = run_batch(workflow, prefix)
        batch_outcomes = run.outcomes(keys)

        started = time.perf_counter()
        single = [
            workflow.classify_bytes(body, f"incoming/bench/{name}")
            for name, body in zip(names, bodies, strict=True)
        ]
        single_seconds = time.perf_counter() - started

    batch_rate, single_rate = args.count / run.seconds, args.count / single_seconds
    by_name = Counter(keys[json.loads(r["Input"])["s3_key"]] for r in run.records)
    lost = [name for name in names if by_name[name] == 0]
    duplicated = [name for name, seen in by_name.items() if seen > 1]
    single_lost = sum(1 for outcome in single if outcome.status not in ("SUCCEEDED", "FAILED"))
    disagree = [
        name
        for name, batched, alone in zip(names, batch_outcomes, single, strict=True)
        if kind(batched) != kind(alone)
    ]
    print(f"images: {args.count} per path ({len(files)} distinct), concurrency {concurrency}")
    for path, seconds, rate, outcomes in (
        ("batch", run.seconds, batch_rate, batch_outcomes),
        ("one by one", single_seconds, single_rate, single),
    ):
        counts = dict(sorted(Counter(kind(o) for o in outcomes).items()))
        print(f"{path:11}{seconds:8.1f} s {rate:8.2f} items/s  {counts}")
    print(f"ratio batch/one-by-one items/s: {batch_rate / single_rate:.2f}")
    print(
        f"reconciled: batch {run.status} (map run {run.map_run_status}), lost {len(lost)}, "
        f"duplicated {len(duplicated)}; one by one lost {single_lost}; "
        f"outcomes differing between paths {len(disagree)}"
    )
    return 0 if not (lost or duplicated or single_lost or disagree) else 1


if __name__ == "__main__":
    sys.exit(main())
