"""The thumbnail probe: a logistic regression on the photo expert's features of thumbnails.

The expert's ImageNet head reads an enlarged 32 px thumbnail poorly (``photo_expert.py``), but
its features of one still tell a bicycle from a motorcycle: a linear probe fitted on them in
training, added to our network's log-odds on the images whose detail gate stays closed, scores
higher on CIFAR than our network alone (docs/real-photos.md). Photos never reach it.

Shipped in the artifact's ``code/``; its weights and the features' standardization are the
artifact's ``thumbnail-probe.pth``.
"""

from __future__ import annotations

import torch
from torch import nn

FEATURES = 1280
# The L2 penalty on the weights of the standardized features, and the share of the fitted
# log-odds that the probe adds to ours: the best of penalties 1e-4 to 3 and shares 0.25 to 1.5
# on three seeds' validation folds of the training split (docs/real-photos-tried.md).
L2_PENALTY = 0.1
VOTE_WEIGHT = 0.5
MAX_ITERATIONS = 200


class ThumbnailProbe(nn.Module):
    """Expert features (Nx1280) to its vote (N): log-odds of motorcycle against bicycle."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(FEATURES, 1)
        self.register_buffer("mean", torch.zeros(FEATURES))
        self.register_buffer("std", torch.ones(FEATURES))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features - self.mean) / self.std).squeeze(1)


def fit_probe(
    features: torch.Tensor, labels: torch.Tensor, l2: float = L2_PENALTY
) -> ThumbnailProbe:
    """The probe minimizing the mean log-loss of ``labels`` (1: motorcycle) plus ``l2`` times
    its squared weights, on standardized ``features`` (deterministic: L-BFGS from zero), its
    log-odds scaled by ``VOTE_WEIGHT``."""
    if len(features) != len(labels) or len(torch.unique(labels)) != 2:
        raise ValueError(
            f"the probe needs features and labels of both classes, one label per row: got "
            f"{len(features)} rows, {len(labels)} labels of {len(torch.unique(labels))} classes"
        )
    with torch.inference_mode(False), torch.enable_grad():  # whatever mode the caller is in
        features = features.clone()  # a normal tensor: inference-mode tensors cannot train
        probe = ThumbnailProbe()
        probe.mean.copy_(features.mean(0))
        probe.std.copy_(features.std(0).clamp_min(1e-6))
        nn.init.zeros_(probe.linear.weight)
        nn.init.zeros_(probe.linear.bias)
        targets = labels.float()
        optimizer = torch.optim.LBFGS(
            probe.linear.parameters(), max_iter=MAX_ITERATIONS, line_search_fn="strong_wolfe"
        )

        def loss() -> torch.Tensor:
            optimizer.zero_grad()
            value = nn.functional.binary_cross_entropy_with_logits(probe(features), targets)
            value = value + l2 * probe.linear.weight.square().sum()
            value.backward()
            return value

        optimizer.step(loss)
    probe.requires_grad_(False)
    probe.linear.weight.mul_(VOTE_WEIGHT)
    probe.linear.bias.mul_(VOTE_WEIGHT)
    return probe.eval()
