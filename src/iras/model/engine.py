"""What the classifier needs of an inference engine: pixels in, probabilities out.

Two engines implement it: `OnnxEngine` (ONNX Runtime, the default: 2-4x faster on a
CPU, and no torch import at start-up) and `TorchEngine` (PyTorch, the reference the
ONNX export is checked against, and the fallback when ONNX Runtime is unavailable).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from iras.model.preprocess import Pixels

Probabilities = npt.NDArray[np.float32]
"""N x classes, each row summing to 1."""


class Engine(Protocol):
    """Runs one model's whole graph (`iras.model.network`) on a batch of pixels."""

    @property
    def name(self) -> str:
        """ "onnx" or "torch": reported in results and logs."""
        ...

    def run(self, pixels: Pixels) -> Probabilities:
        """Probabilities for a uint8 N x H x W x 3 batch; may raise on bad input."""
        ...
