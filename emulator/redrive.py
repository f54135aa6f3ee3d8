"""Run again the executions that failed for want of capacity, in AWS or in the local mode.

    python -m emulator.redrive --state-machine-arn ARN [--dry-run]

Lists the state machine's FAILED executions, keeps those whose error is a capacity failure
(``EndpointError`` caused by ``EndpointBusy``, or ``Lambda.TooManyRequestsException``), and
redrives each: Step Functions' ``RedriveExecution`` restarts a Standard execution from the
state that failed, with its input, for 14 days after it ended. ``EndpointUnavailable`` is
left alone: a model's own 5xx would fail again, and a dead endpoint needs mending first.
moto 5.2.5 does not implement redrive (``NotImplementedError``), so in the local mode each
one is started again from the input it recorded, under a new name. Uses boto3's default
session: AWS credentials, or the local mode's own process.
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

CAPACITY_CAUSE = "EndpointBusy"
LAMBDA_THROTTLED = "Lambda.TooManyRequestsException"


def failed_on_capacity(sfn: Any, state_machine_arn: str) -> list[dict[str, Any]]:
    """``describe_execution`` of every FAILED execution whose failure was capacity."""
    found = []
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=state_machine_arn, statusFilter="FAILED"
    ):
        for execution in page["executions"]:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            if is_capacity_failure(described.get("error"), described.get("cause")):
                found.append(described)
    return found


def is_capacity_failure(error: str | None, cause: str | None) -> bool:
    if error == LAMBDA_THROTTLED:
        return True
    if error != "EndpointError":
        return False
    try:
        return json.loads(cause or "{}").get("errorType") == CAPACITY_CAUSE
    except (ValueError, AttributeError):
        return False


def redrive(sfn: Any, state_machine_arn: str, dry_run: bool = False) -> list[str]:
    """Redrive the capacity failures; return the ARNs now running (redriven or restarted)."""
    running = []
    for described in failed_on_capacity(sfn, state_machine_arn):
        arn = described["executionArn"]
        if dry_run:
            running.append(arn)
            continue
        try:
            sfn.redrive_execution(executionArn=arn)
            running.append(arn)
        except NotImplementedError:  # moto: start it again from its recorded input
            started = sfn.start_execution(
                stateMachineArn=state_machine_arn,
                name=f"redrive-{uuid.uuid4().hex}",
                input=described["input"],
            )
            running.append(started["executionArn"])
    return running


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--state-machine-arn", required=True, help="the workflow's ARN")
    parser.add_argument("--dry-run", action="store_true", help="list, do not redrive")
    args = parser.parse_args(argv)
    arns = redrive(boto3.client("stepfunctions"), args.state_machine_arn, args.dry_run)
    for arn in arns:
        print(arn)
    print(f"{'would redrive' if args.dry_run else 'redriven'}: {len(arns)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
