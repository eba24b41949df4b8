"""The ONNX Runtime engine: the exported network, run without importing torch.

Measured on 2 cores for EfficientNet-Lite0 (benchmarks/README.md), the same graph runs
2-4x faster in ONNX Runtime than in eager PyTorch, and a worker that finds the export
cached starts in a fraction of the time: it never imports torch.
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from iras.model.engine import Probabilities
from iras.model.preprocess import Pixels

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"


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
    """

    name = "onnx"

    def __init__(self, path: Path, threads: int, lone_threads: int | None = None) -> None:
        self.path = path
        self.lone_threads = max(threads, lone_threads or threads)
        self._session = _session(path, threads)
        self._lone_session = (
            _session(path, self.lone_threads) if self.lone_threads > threads else self._session
        )

    def run(self, pixels: Pixels) -> Probabilities:
        session = self._lone_session if len(pixels) == 1 else self._session
        [probabilities] = session.run([OUTPUT_NAME], {INPUT_NAME: pixels})
        result: Probabilities = probabilities
        return result


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
