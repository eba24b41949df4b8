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
    """

    name = "onnx"

    def __init__(self, path: Path, threads: int) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(self, pixels: Pixels) -> Probabilities:
        [probabilities] = self._session.run([OUTPUT_NAME], {INPUT_NAME: pixels})
        result: Probabilities = probabilities
        return result
