"""A model with its preprocessing: bytes of images in, one outcome per image out.

The worker calls `classify` from a thread (`iras.runtime.in_daemon_thread`) with the
images of one batch. Every image gets an outcome, in input order, whatever happens to the
others: an undecodable image becomes an `ImageError` before the forward pass, and if the
batched forward pass itself fails the images are retried one at a time, so one bad input
costs its batch-mates a few milliseconds, never their results.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from iras.model.card import ModelCard
from iras.model.engine import Engine, Probabilities
from iras.model.labels import imagenet_labels
from iras.model.preprocess import ImageDecodeError, Pixels, PreprocessSpec, crop, to_pixels
from iras.model.types import ImageError, Outcome, Prediction, Scored, TimedOutcomes

log = logging.getLogger(__name__)


class _ForwardClock:
    """Seconds spent in forward passes, added up over a batch's (and its retries') passes."""

    __slots__ = ("seconds",)

    def __init__(self) -> None:
        self.seconds = 0.0


class Classifier:
    """An inference engine, the preprocessing its model was trained with, and class names.

    Safe to call from any thread. Decoding runs outside the lock and forward passes
    inside it, so two callers overlap one batch's decoding with another's forward pass,
    but never run two forward passes at once (each already uses every core). With
    `decode_threads` > 1 the images of a batch are decoded in parallel (Pillow releases
    the GIL): at batch 8 on 2 cores, 78 instead of 69 images/s.
    """

    def __init__(
        self,
        name: str,
        engine: Engine,
        spec: PreprocessSpec,
        *,
        decode_threads: int = 1,
        labels: Sequence[str] | None = None,
        card: ModelCard | None = None,
    ) -> None:
        self.name = name
        self.engine = engine
        self.spec = spec
        self.labels: tuple[str, ...] = tuple(labels) if labels is not None else imagenet_labels()
        # The model's card (`iras.model.card`): its version goes into every result.
        self.card = card
        self.version = card.version if card is not None else ""
        self._lock = threading.Lock()
        self._decode_pool = (
            ThreadPoolExecutor(decode_threads, thread_name_prefix="iras-decode")
            if decode_threads > 1
            else None
        )

    def __repr__(self) -> str:
        return (
            f"Classifier(name={self.name!r}, version={self.version!r}, engine={self.engine.name!r})"
        )

    def classify(self, blobs: Sequence[bytes], top_k: int = 5) -> list[Outcome]:
        """One outcome per blob, in order: a `Prediction` with `top_k` labels or an `ImageError`."""
        return self.classify_timed(blobs, top_k).outcomes

    def classify_timed(self, blobs: Sequence[bytes], top_k: int = 5) -> TimedOutcomes:
        """`classify`, with the time spent decoding and in the forward pass (the worker's
        per-stage metrics: a whole call's time hides which of the two a slow batch spent)."""
        if not 1 <= top_k <= len(self.labels):
            raise ValueError(f"top_k must be between 1 and {len(self.labels)}, got {top_k}")
        decode_started = time.perf_counter()
        outcomes: list[Outcome] = []
        crops: list[tuple[int, Image.Image]] = []
        for position, crop_or_error in enumerate(self._crop_all(blobs)):
            if isinstance(crop_or_error, ImageError):
                outcomes.append(crop_or_error)
            else:
                outcomes.append(ImageError("not classified"))
                crops.append((position, crop_or_error))
        batch = to_pixels([image for _, image in crops]) if crops else None
        decode_s = time.perf_counter() - decode_started
        forward = _ForwardClock()
        if batch is not None:
            predicted = self._predict(batch, top_k, forward)
            for (position, _), outcome in zip(crops, predicted, strict=True):
                outcomes[position] = outcome
        return TimedOutcomes(outcomes, decode_s=decode_s, forward_s=forward.seconds)

    def _crop_all(self, blobs: Sequence[bytes]) -> list[Image.Image | ImageError]:
        """Decode in the pool when there is one; the engine is kept out of the pool's
        threads, where it would start a second thread team to fight the forward pass's."""
        if self._decode_pool is not None and len(blobs) > 1:
            return list(self._decode_pool.map(self._try_crop, blobs))
        return [self._try_crop(blob) for blob in blobs]

    def _try_crop(self, blob: bytes) -> Image.Image | ImageError:
        try:
            return crop(blob, self.spec)
        except ImageDecodeError as exc:
            return ImageError(str(exc))

    def _predict(self, batch: Pixels, top_k: int, forward: _ForwardClock) -> list[Outcome]:
        try:
            with self._lock:
                started = time.perf_counter()
                try:
                    probabilities = self.engine.run(batch)
                finally:
                    forward.seconds += time.perf_counter() - started
            return self._top_k(probabilities, top_k)
        except Exception:
            if len(batch) == 1:
                log.exception("forward pass failed for one image")
                return [ImageError("classification failed: the model could not run on it")]
            log.exception("batched forward pass of %d images failed; retrying singly", len(batch))
        return [
            outcome
            for i in range(len(batch))
            for outcome in self._predict(batch[i : i + 1], top_k, forward)
        ]

    def _top_k(self, probabilities: Probabilities, top_k: int) -> list[Outcome]:
        ranked = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
        outcomes: list[Outcome] = []
        for row, indices in zip(probabilities.tolist(), ranked.tolist(), strict=True):
            top = tuple(Scored(self.labels[index], row[index]) for index in indices)
            outcomes.append(Prediction(label=top[0].label, top=top))
        return outcomes
