"""The pinned PyTorch framework of the SageMaker training and inference containers.

The one place for the version: the cloud launcher asks sagemaker-core's
``image_uris.retrieve`` for the images of this version, and the model record names it.
"""

from __future__ import annotations

FRAMEWORK_VERSION = "2.6.0"
PY_VERSION = "py312"
# The inference image that ``image_uris.retrieve`` names for us-east-1 on a CPU instance (a
# test holds the two equal), so that the local mode writes its record without the SDK. The
# endpoint stack keeps only its repository and tag; the account and region come from the
# deployment.
LOCAL_INFERENCE_IMAGE = (
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/"
    f"pytorch-inference:{FRAMEWORK_VERSION}-cpu-{PY_VERSION}"
)
