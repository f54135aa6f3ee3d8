"""Offline URIs of the AWS Deep Learning Container images for PyTorch 2.6.0 / py312.

The registry accounts below are the ones sagemaker-core 2.27.0 lists for this framework
version (``sagemaker/core/image_uri_config/pytorch.json``); the URI shape is the one its
``image_uris.retrieve`` builds: ``<account>.dkr.ecr.<region>.<suffix>/pytorch-<scope>:
<version>-<cpu|gpu>-<py>``. Kept here so that neither the local mode nor the launcher
needs the SDK; ``train.py --image-uri`` overrides it when AWS adds a region.
"""

from __future__ import annotations

from typing import Literal

FRAMEWORK_VERSION = "2.6.0"
PY_VERSION = "py312"
LOCAL_REGION = "us-east-1"
ImageScope = Literal["training", "inference"]

DLC_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-east-2": "975050140332",
    "ap-northeast-1": "763104351884",
    "ap-northeast-2": "763104351884",
    "ap-northeast-3": "364406365360",
    "ap-south-1": "763104351884",
    "ap-south-2": "772153158452",
    "ap-southeast-1": "763104351884",
    "ap-southeast-2": "763104351884",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-6": "633930458069",
    "ap-southeast-7": "590183813437",
    "ca-central-1": "763104351884",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-1": "763104351884",
    "eu-central-2": "380420809688",
    "eu-north-1": "763104351884",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "eu-west-1": "763104351884",
    "eu-west-2": "763104351884",
    "eu-west-3": "763104351884",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "me-west-1": "124382933778",
    "mx-central-1": "637423239942",
    "sa-east-1": "763104351884",
    "us-east-1": "763104351884",
    "us-east-2": "763104351884",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
    "us-west-1": "763104351884",
    "us-west-2": "763104351884",
}
REGIONS_WITHOUT_TRAINING_IMAGE = frozenset({"me-west-1"})


class UnsupportedImageRequest(ValueError):
    """No PyTorch 2.6.0 image exists for this region, scope or instance type."""


def processor_of(instance_type: str) -> str:
    """``cpu`` or ``gpu`` for an ``ml.<family>.<size>`` instance type."""
    parts = instance_type.split(".")
    if len(parts) != 3 or parts[0] != "ml":
        raise UnsupportedImageRequest(f"instance type {instance_type!r} is not ml.<family>.<size>")
    family = parts[1]
    if family.startswith(("inf", "trn")):
        raise UnsupportedImageRequest(f"{instance_type} needs a Neuron image, not this one")
    return "gpu" if family[0] in ("g", "p") else "cpu"


def pytorch_image_uri(region: str, scope: ImageScope, instance_type: str) -> str:
    """The PyTorch 2.6.0/py312 training or inference image URI for a region and instance."""
    account = DLC_ACCOUNTS.get(region)
    if account is None or (scope == "training" and region in REGIONS_WITHOUT_TRAINING_IMAGE):
        raise UnsupportedImageRequest(
            f"no PyTorch {FRAMEWORK_VERSION} {scope} image is known for region {region!r}; "
            "pass --image-uri"
        )
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    tag = f"{FRAMEWORK_VERSION}-{processor_of(instance_type)}-{PY_VERSION}"
    return f"{account}.dkr.ecr.{region}.{suffix}/pytorch-{scope}:{tag}"
