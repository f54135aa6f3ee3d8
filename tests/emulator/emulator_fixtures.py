"""Test data the local-mode tests build themselves: a stub model archive, moto functions."""

import io
import tarfile
import textwrap
import zipfile
from pathlib import Path

import boto3

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
ARCHIVE = SHARED_DATA / "cifar-100-python-bicycle-motorcycle.tar.gz"
PHOTOS = SHARED_DATA / "real-photos-dev"
# The fields of one line that `classify` and `batch` print (emulator.workflow.Outcome).
OUTCOME_FIELDS = frozenset(
    {"file", "s3_key", "status", "label", "confidence", "inferences", "error", "cause"}
    | {"duration_ms"}
)
MOTO_CONFIG = {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}

STUB_INFERENCE = textwrap.dedent(
    '''
    """A stub entry point: the probabilities depend only on the request body."""
    import json
    import os

    from helper import probabilities


    class BadInput(ValueError):
        status_code = 400


    def model_fn(model_dir):
        with open(os.path.join(model_dir, "weights.json")) as f:
            return json.load(f)


    def input_fn(body, content_type):
        if content_type not in ("image/png", "application/x-image", "application/json"):
            raise BadInput(f"unsupported content type {content_type}")
        if body in (b"explode", "explode"):
            raise RuntimeError("the model exploded")
        return body


    def predict_fn(data, model):
        return probabilities(data, model["bias"])


    def output_fn(prediction, accept):
        return json.dumps(prediction), "application/json"
    '''
)

STUB_HELPER = textwrap.dedent(
    """
    def probabilities(data, bias):
        p = (len(data) % 10) / 10 * bias
        return [p, 1 - p]
    """
)


def build_stub_archive(path: Path, bias: float = 1.0) -> Path:
    """A model.tar.gz laid out as SageMaker packs it: weights at the root, code/ beside."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in (
            ("weights.json", f'{{"bias": {bias}}}'),
            ("code/inference.py", STUB_INFERENCE),
            ("code/helper.py", STUB_HELPER),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def create_function(name: str, variables: dict[str, str]) -> str:
    """A moto Lambda function (its code is a placeholder: the local runtime dispatches)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handler.py", "")
    role = boto3.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")
    return boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="handler.lambda_handler",
        Code={"ZipFile": archive.getvalue()},
        Environment={"Variables": variables},
    )["FunctionArn"]
