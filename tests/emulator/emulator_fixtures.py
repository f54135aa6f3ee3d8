"""Test data the local-mode tests build themselves: a stub model archive."""

import io
import tarfile
import textwrap
from pathlib import Path

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
