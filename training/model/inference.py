"""Inference handlers for the AWS PyTorch inference container (and the local emulator).

The toolkit calls ``model_fn(model_dir)`` once, then per request ``input_fn(body,
content_type)``, ``predict_fn(data, model)`` and ``output_fn(prediction, accept)``. The
response is the JSON list ``[p_bicycle, p_motorcycle]``. Bad requests raise an error with
an HTTP 4xx ``status_code`` (the toolkit's own ``GenericInferenceToolkitError`` inside the
container), so the worker answers the client and keeps serving.

When the model has the photo expert (``photo_expert.py``) and the image holds more detail
than a thumbnail can, the expert answers, reading it at 240 px. Every other image is a
thumbnail to our network, which reads it at 32x32, and the thumbnail probe
(``thumbnail_probe.py``) adds its log-odds, read from the expert's features of the thumbnail
enlarged (docs/real-photos.md measures all three).

Shipped flat in the artifact's ``code/`` folder next to ``network.py``, ``photo_expert.py`` and
``thumbnail_probe.py``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from network import CLASS_NAMES, INPUT_SIZE, build_network
from photo_expert import DETAIL_GATE, DETAIL_ROUND_TRIP, EXPERT_SIZE, PhotoExpert, detail
from PIL import Image, ImageOps, UnidentifiedImageError
from thumbnail_probe import ThumbnailProbe
from torch import nn

try:
    from sagemaker_inference.errors import GenericInferenceToolkitError as _ToolkitError
except ImportError:  # outside the SageMaker container: same attributes, same signature

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        """The toolkit's ``GenericInferenceToolkitError``: status, message, phrase."""

        def __init__(self, status_code: int, message: str | None = None, phrase: str | None = None):
            self.status_code = status_code
            self.message = message or "Invalid Request"
            self.phrase = phrase or self.message
            super().__init__(status_code, self.message, self.phrase)


class RequestError(_ToolkitError):
    """A request the endpoint refuses, with the HTTP status to answer.

    Its text is the message alone: the toolkit ends the error body with the traceback, whose
    last line would otherwise be the tuple ``(status, message, phrase)``.
    """

    def __str__(self) -> str:
        return self.message


MODEL_FILE = "model.pth"
CONFIG_FILE = "model-config.json"
PHOTO_EXPERT_FILE = "photo-expert.pth"
THUMBNAIL_PROBE_FILE = "thumbnail-probe.pth"
JSON_CONTENT_TYPE = "application/json"
IMAGE_CONTENT_TYPES = frozenset({"image/png", "image/jpeg", "application/x-image"})
ACCEPTED_RESPONSE_TYPES = frozenset({JSON_CONTENT_TYPE, "application/*", "*/*"})
# Pillow's own decompression-bomb limit, raised to an error instead of a warning.
MAX_IMAGE_PIXELS = 89_478_485


class ProbabilityModel(nn.Module):
    """Wraps a network: takes RGB in [0, 1], normalizes, returns class probabilities.

    With ``flip_average`` the probabilities are the mean over the image and its mirror.
    """

    def __init__(
        self,
        network: nn.Module,
        mean: list[float],
        std: list[float],
        flip_average: bool = True,
    ) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.flip_average = flip_average

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        normalized = (images - self.mean) / self.std
        if not self.flip_average:
            return torch.softmax(self.network(normalized), dim=1)
        both = torch.cat([normalized, torch.flip(normalized, dims=[3])])  # one forward pass
        original, mirrored = torch.softmax(self.network(both), dim=1).chunk(2)
        return (original + mirrored) / 2


@dataclass(frozen=True)
class ModelInput:
    """What ``input_fn`` makes of an image: the 1x3x32x32 thumbnail our network reads and,
    for an image with detail above the expert's gate, the expert's 1x3x240x240 square."""

    thumbnail: torch.Tensor
    photo: torch.Tensor | None = None


def add_log_odds(probabilities: torch.Tensor, log_odds: torch.Tensor) -> torch.Tensor:
    """Nx2 class probabilities with motorcycle-against-bicycle ``log_odds`` (N) added."""
    motorcycle = torch.sigmoid(torch.logit(probabilities[:, 1], eps=1e-7) + log_odds)
    return torch.stack([1 - motorcycle, motorcycle], dim=1)


class ModelConfigError(ValueError):
    """The artifact's ``model-config.json`` names parts that cannot serve together."""


class Classifier(nn.Module):
    """The served model: ``thumbnails`` (our network), the optional ``photo_expert`` and the
    optional ``thumbnail_probe`` on the expert's features.

    The expert and the probe give log-odds of motorcycle against bicycle: ``CLASS_NAMES`` in
    that order.
    """

    def __init__(
        self,
        thumbnails: ProbabilityModel,
        photo_expert: PhotoExpert | None,
        thumbnail_probe: ThumbnailProbe | None = None,
    ) -> None:
        super().__init__()
        if thumbnail_probe is not None and photo_expert is None:
            raise ModelConfigError(
                "the thumbnail probe reads the photo expert's features: the artifact needs "
                "both, or train with --hyperparameter thumbnail-probe=0"
            )
        self.thumbnails = thumbnails
        self.photo_expert = photo_expert
        self.thumbnail_probe = thumbnail_probe

    def thumbnail_probabilities(self, thumbnails: torch.Tensor) -> torch.Tensor:
        """Class probabilities (Nx2) of Nx3x32x32 thumbnails: ours, plus the probe's log-odds."""
        probabilities = self.thumbnails(thumbnails)
        if self.thumbnail_probe is None:
            return probabilities
        features = self.photo_expert.thumbnail_features(thumbnails)
        return add_log_odds(probabilities, self.thumbnail_probe(features))

    def forward(self, data: ModelInput) -> torch.Tensor:
        """Class probabilities of one image: a photo's are the expert's alone (ours only
        cost it points on photos: docs/real-photos.md); a thumbnail's are ours, plus the
        probe's log-odds when the model has one."""
        if data.photo is None or self.photo_expert is None:
            return self.thumbnail_probabilities(data.thumbnail)[0]
        motorcycle = torch.sigmoid(self.photo_expert(data.photo))[0]
        return torch.stack([1 - motorcycle, motorcycle])


def upright_rgb(image: Image.Image) -> Image.Image:
    """Any mode to RGB, turned as its EXIF orientation says; transparent pixels white."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def reduce_box(
    image: Image.Image, box: tuple[int, int, int, int], size: int = INPUT_SIZE
) -> Image.Image:
    """The ``box`` of ``image`` resized to ``size`` x ``size``.

    Bicubic: a 32x32 image sent enlarged comes back closest to itself (bilinear blurred it
    and lost points on phone-size copies; docs/real-photos.md).
    """
    return image.resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=2.0)


def centre_square(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def fit_to_input(image: Image.Image, size: int = INPUT_SIZE) -> Image.Image:
    """Any mode and size to a ``size`` x ``size`` RGB image: upright, centre square, resized."""
    image = upright_rgb(image)
    return reduce_box(image, centre_square(*image.size), size)


def photo_square(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image | None:
    """The expert's square of an upright image, or None when its gate stays closed:
    a square of at most 64 px cannot hold more than 64 px do, so it is not even measured."""
    if box[2] - box[0] <= DETAIL_ROUND_TRIP:
        return None
    square = reduce_box(image, box, EXPERT_SIZE)
    return square if detail(square) > DETAIL_GATE else None


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """A fitted RGB image to a 1x3xHxW float tensor in [0, 1]."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array.transpose(2, 0, 1).copy()).unsqueeze(0)


def decode_image(body: bytes) -> Image.Image:
    """Bytes of any image format Pillow reads; a 400/413 ``RequestError`` otherwise."""
    try:
        image = Image.open(io.BytesIO(body))
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise RequestError(413, f"image of {width}x{height} pixels is too large")
        image.draft("RGB", (2 * EXPERT_SIZE, 2 * EXPERT_SIZE))  # JPEG: decoded at 1/2-1/8
        image.load()
    except UnidentifiedImageError:  # its text names the BytesIO object: say what was sent
        raise RequestError(400, _not_an_image(body, "no image format recognized")) from None
    except (Image.DecompressionBombError, OSError, SyntaxError) as error:
        raise RequestError(400, _not_an_image(body, str(error))) from None
    return image


def _not_an_image(body: bytes, reason: str) -> str:
    return (
        f"request body is not a decodable PNG/JPEG image ({len(body)} bytes: {reason}); "
        "send the image file's bytes with Content-Type image/png or image/jpeg"
    )


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def model_fn(model_dir: str) -> Classifier:
    """Load the network, its configuration, the photo expert and the thumbnail probe written
    by the training entry point."""
    directory = Path(model_dir)
    config = json.loads((directory / CONFIG_FILE).read_text())
    network = build_network(
        config["architecture"],
        config["width"],
        len(config["class_names"]),
        config.get("members", 1),
    )
    state = torch.load(directory / MODEL_FILE, map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    thumbnails = ProbabilityModel(network, config["mean"], config["std"], config["flip_average"])
    expert_file = config.get("photo_expert")
    photo_expert = PhotoExpert(directory / expert_file) if expert_file else None
    probe_file = config.get("thumbnail_probe")
    thumbnail_probe = None
    if probe_file:
        thumbnail_probe = ThumbnailProbe()
        probe_state = torch.load(directory / probe_file, map_location="cpu", weights_only=True)
        thumbnail_probe.load_state_dict(probe_state)
    return Classifier(thumbnails, photo_expert, thumbnail_probe).eval()


def input_fn(request_body: bytes, request_content_type: str) -> ModelInput:
    """PNG or JPEG bytes (any size and colour mode) to the thumbnail and, for a photo, its
    expert's square."""
    media_type = _media_type(request_content_type)
    if media_type not in IMAGE_CONTENT_TYPES:
        raise RequestError(
            415,
            f"content type {request_content_type!r} is not supported; "
            f"send one of {', '.join(sorted(IMAGE_CONTENT_TYPES))}",
        )
    if isinstance(request_body, str) or not request_body:
        raise RequestError(400, "body is empty or text, expected image bytes")
    image = upright_rgb(decode_image(bytes(request_body)))
    box = centre_square(*image.size)
    photo = photo_square(image, box)
    return ModelInput(
        image_to_tensor(reduce_box(image, box)), None if photo is None else image_to_tensor(photo)
    )


def predict_fn(input_data: ModelInput, model: Classifier) -> list[float]:
    """Class probabilities of one image, in the order of ``CLASS_NAMES``."""
    with torch.inference_mode():
        return model(input_data).tolist()


def output_fn(prediction: list[float], accept: str | None) -> str:
    """The JSON list ``[p_bicycle, p_motorcycle]``; 406 for a response type other than JSON."""
    accepted = {_media_type(part) for part in (accept or JSON_CONTENT_TYPE).split(",")}
    if not accepted & ACCEPTED_RESPONSE_TYPES:
        raise RequestError(406, f"accept {accept!r} is not supported; use {JSON_CONTENT_TYPE}")
    if len(prediction) != len(CLASS_NAMES):
        raise RequestError(500, f"prediction has {len(prediction)} values, not {len(CLASS_NAMES)}")
    return json.dumps([float(value) for value in prediction])
