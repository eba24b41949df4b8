"""The ONNX Runtime engine: the exported network, run without importing torch.

Measured on 2 cores for EfficientNet-Lite0 (benchmarks/README.md), the same graph runs
2-4x faster in ONNX Runtime than in eager PyTorch, and a worker that finds the export
cached starts in a fraction of the time: it never imports torch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

from iras.model.engine import Probabilities
from iras.model.preprocess import Pixels
from iras.model.providers import CPU, fallback_note, select_providers

log = logging.getLogger(__name__)

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
#: Providers that run on NVIDIA's CUDA libraries.
NEEDS_CUDA_LIBRARIES = {"CUDAExecutionProvider", "TensorrtExecutionProvider"}


class OnnxEngine:
    """An ONNX Runtime session over an exported `PixelsToProbabilities` graph.

    One session, run from any thread (ONNX Runtime allows concurrent `run` calls); its
    intra-op pool has `threads` threads and does not spin between runs, so the cores
    are free for decoding the next batch while the worker waits on I/O.

    With `lone_threads` above `threads`, a second session runs batches of one image on
    that many threads. Workers that share a machine run full batches on their share of
    its cores, but a lone image means no backlog: the other cores are idle, and the
    image's latency is what counts (measured on 2 cores: ~17 ms on one thread, ~13 ms
    on two).

    `providers` is the ordered list of execution providers to ask for (short names such
    as `cuda` accepted; the CPU is always the last fallback): the ones this onnxruntime
    lacks are left out, and `providers` afterwards holds what the session really got.
    """

    name = "onnx"

    def __init__(
        self,
        path: Path,
        threads: int,
        lone_threads: int | None = None,
        *,
        providers: Sequence[str] = (CPU,),
    ) -> None:
        self.path = path
        self.lone_threads = max(threads, lone_threads or threads)
        self._session = _session(path, threads, providers)
        self._lone_session = (
            _session(path, self.lone_threads, providers)
            if self.lone_threads > threads
            else self._session
        )
        self.providers: tuple[str, ...] = tuple(self._session.get_providers())
        # The graph's tensors, which a model card is checked against: the first input
        # and output are fed and read unless a checked card names others.
        self.inputs = tuple(self._session.get_inputs())
        self.outputs = tuple(self._session.get_outputs())
        self.input_name, self.output_name = self.inputs[0].name, self.outputs[0].name

    def run(self, pixels: Pixels) -> Probabilities:
        session = self._lone_session if len(pixels) == 1 else self._session
        [probabilities] = session.run([self.output_name], {self.input_name: pixels})
        result: Probabilities = probabilities
        return result


def _session(path: Path, threads: int, providers: Sequence[str]) -> ort.InferenceSession:
    """A session on the requested providers this onnxruntime has; logs what it got."""
    selection = select_providers(providers, ort.get_available_providers())
    if set(selection.chosen) & NEEDS_CUDA_LIBRARIES:
        _preload_cuda_libraries()
    session = ort.InferenceSession(str(path), _options(threads), providers=list(selection.chosen))
    got = session.get_providers()
    log.info(
        "ONNX Runtime session on %s, threads %d: runs on %s", path.name, threads, ", ".join(got)
    )
    note = fallback_note(selection, got)
    if note is not None:
        log.warning(
            "execution providers %s were asked for, but %s", ", ".join(selection.requested), note
        )
    return session


def _preload_cuda_libraries() -> None:
    """Make NVIDIA's CUDA and cuDNN libraries findable when they came from PyPI.

    `onnxruntime-gpu[cuda,cudnn]` (the GPU worker image) installs them under the venv's
    `nvidia/` packages, where the dynamic loader does not look; onnxruntime (1.21 on)
    loads them itself when asked, and falls back to the system's (a Deep Learning AMI's
    CUDA) for those it does not find there. Not measured here: no GPU on this machine.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        preload()


def _options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options
