"""The PyTorch engine: eager inference of the network, the reference for every other."""

from __future__ import annotations

import numpy as np
import torch

from iras.model.engine import Probabilities
from iras.model.network import PixelsToProbabilities
from iras.model.preprocess import Pixels


class TorchEngine:
    """Runs a `PixelsToProbabilities` network with `threads` torch threads.

    torch's thread count is global to the process; the last engine built sets it.
    """

    name = "torch"

    def __init__(self, network: PixelsToProbabilities, threads: int) -> None:
        torch.set_num_threads(threads)
        self.network = network.eval()

    def run(self, pixels: Pixels) -> Probabilities:
        # The batch is read-only (a view of bytes); torch wants a writable buffer even
        # though the graph never writes to its input.
        tensor = torch.from_numpy(np.require(pixels, requirements="W"))
        with torch.inference_mode():
            probabilities: Probabilities = self.network(tensor).numpy()
        return probabilities
