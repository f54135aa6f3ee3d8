"""The classifier networks, shared by the training entry point and the inference module.

This file is shipped flat in the artifact's ``code/`` folder and imported there as the
top-level module ``network``, so it imports nothing from the project.
"""

from __future__ import annotations

import torch
from torch import nn

CLASS_NAMES = ("bicycle", "motorcycle")
INPUT_SIZE = 32
ARCHITECTURES = ("resnet9", "cnn3")


def _conv_block(in_channels: int, out_channels: int, pool: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_block(channels, channels), _conv_block(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    """A narrow ResNet-9 (the DAWNBench CIFAR design) for 32x32 RGB input."""

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_block(3, width),
            _conv_block(width, 2 * width, pool=True),
            _Residual(2 * width),
            _conv_block(2 * width, 4 * width, pool=True),
            _conv_block(4 * width, 8 * width, pool=True),
            _Residual(8 * width),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(8 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SmallCNN(nn.Module):
    """Three conv blocks (width, 2*width, 4*width channels) and a linear head."""

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_block(3, width, pool=True),
            _conv_block(width, 2 * width, pool=True),
            _conv_block(2 * width, 4 * width, pool=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Ensemble(nn.Module):
    """Networks of one architecture whose logits are averaged."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(dim=0)


def build_network(
    architecture: str, width: int, num_classes: int = len(CLASS_NAMES), members: int = 1
) -> nn.Module:
    """Build an untrained network by name (one of ``ARCHITECTURES``), or an ensemble of them."""
    if members > 1:
        return Ensemble([build_network(architecture, width, num_classes) for _ in range(members)])
    if architecture == "resnet9":
        return ResNet9(num_classes, width)
    if architecture == "cnn3":
        return SmallCNN(num_classes, width)
    raise ValueError(f"unknown architecture {architecture!r}; choose one of {ARCHITECTURES}")
