"""Feed a graph what its card says it takes, and read what it says it gives.

The classifier speaks one language whatever the model: uint8 N x H x W x 3 crops in
(Pillow's layout, `iras.model.preprocess.to_pixels`), probabilities out. `CardEngine`
wraps an engine whose graph speaks another: it lays the pixels out as the card's layout
and dtype (float32 inputs get /255, then (x - mean) / std when the card gives them) and
turns logits into probabilities with a softmax. A card that already speaks the
classifier's language (the built-in models) gets its engine unwrapped: no copy at all.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image

from iras.model.card import ModelCard
from iras.model.engine import Engine, Probabilities
from iras.model.preprocess import Pixels, PreprocessSpec

_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


class RawEngine(Protocol):
    """An engine run on whatever array its graph takes, returning what the graph gives."""

    @property
    def name(self) -> str: ...

    def run(self, pixels: Any) -> Any: ...


def preprocess_spec(card: ModelCard) -> PreprocessSpec:
    """The decode, resize and crop the card describes (what `preprocess.crop` takes).

    Its mean and std are the card's, or the identity when the graph normalises itself
    (they are not applied to the crops: `model_input` does that for float32 graphs).
    """
    return PreprocessSpec(
        resize_px=card.resize,
        crop_px=card.size,
        resample=_RESAMPLE[card.resample],
        mean=card.mean or (0.0, 0.0, 0.0),
        std=card.std or (1.0, 1.0, 1.0),
    )


def model_input(pixels: Pixels, card: ModelCard) -> npt.NDArray[Any]:
    """uint8 N x H x W x 3 crops -> the array the card's graph takes."""
    batch: npt.NDArray[Any] = pixels
    if card.dtype == "float32":
        floats = pixels.astype(np.float32) / np.float32(255.0)
        if card.mean is not None and card.std is not None:
            floats -= np.asarray(card.mean, dtype=np.float32)
            floats /= np.asarray(card.std, dtype=np.float32)
        batch = floats
    if card.layout == "NCHW":
        batch = batch.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch)


def softmax(logits: npt.NDArray[Any]) -> Probabilities:
    """Row-wise softmax, shifted by each row's maximum so large logits do not overflow."""
    shifted = logits.astype(np.float32) - logits.max(axis=1, keepdims=True)
    exps = np.exp(shifted)
    probabilities: Probabilities = exps / exps.sum(axis=1, keepdims=True)
    return probabilities


def speaks_pixels(card: ModelCard) -> bool:
    """Whether the card's graph takes the classifier's pixels and gives probabilities."""
    return card.layout == "NHWC" and card.dtype == "uint8" and card.output == "probabilities"


class CardEngine:
    """`engine` behind the classifier's interface, converting as `card` says."""

    def __init__(self, engine: RawEngine, card: ModelCard) -> None:
        self.engine = engine
        self.card = card

    @property
    def name(self) -> str:
        return self.engine.name

    def run(self, pixels: Pixels) -> Probabilities:
        raw = np.asarray(self.engine.run(model_input(pixels, self.card)))
        if self.card.output == "logits":
            return softmax(raw)
        probabilities: Probabilities = raw.astype(np.float32, copy=False)
        return probabilities


def adapt(engine: RawEngine, card: ModelCard) -> Engine:
    """`engine` as the classifier runs it: itself when its graph speaks pixels."""
    if speaks_pixels(card):
        return engine
    return CardEngine(engine, card)
