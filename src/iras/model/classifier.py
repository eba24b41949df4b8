"""A model with its preprocessing: bytes of images in, one outcome per image out.

The worker calls `classify` from a thread (`asyncio.to_thread`) with the images of one
batch. Every image gets an outcome, in input order, whatever happens to the others: an
undecodable image becomes an `ImageError` before the forward pass, and if the batched
forward pass itself fails the images are retried one at a time, so one bad input costs
its batch-mates a few milliseconds, never their results.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
from PIL import Image
from torch import nn

from iras.model.labels import imagenet_labels
from iras.model.preprocess import ImageDecodeError, PreprocessSpec, crop, preprocess, to_batch
from iras.model.types import ImageError, Outcome, Prediction, Scored

log = logging.getLogger(__name__)


class Classifier:
    """An eval-mode model, the preprocessing it was trained with, and its class names.

    Safe to call from any thread; forward passes are serialised by a lock, since two at
    once would only fight over the same cores (torch parallelises inside one pass).
    With `decode_threads` > 1 the images of a batch are decoded in parallel (Pillow
    releases the GIL): at batch 8 on 2 cores, 78 instead of 69 images/s.
    """

    def __init__(
        self,
        name: str,
        model: nn.Module,
        spec: PreprocessSpec,
        *,
        channels_last: bool = False,
        decode_threads: int = 1,
        labels: Sequence[str] | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.channels_last = channels_last
        self.labels: tuple[str, ...] = tuple(labels) if labels is not None else imagenet_labels()
        model.eval()
        if channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self._lock = threading.Lock()
        self._decode_pool = (
            ThreadPoolExecutor(decode_threads, thread_name_prefix="iras-decode")
            if decode_threads > 1
            else None
        )

    def __repr__(self) -> str:
        return f"Classifier(name={self.name!r}, channels_last={self.channels_last})"

    def preprocess(self, blob: bytes) -> torch.Tensor:
        """The model's input tensor for one image; raises `ImageDecodeError`."""
        return preprocess(blob, self.spec)

    def classify(self, blobs: Sequence[bytes], top_k: int = 5) -> list[Outcome]:
        """One outcome per blob, in order: a `Prediction` with `top_k` labels or an `ImageError`."""
        if not 1 <= top_k <= len(self.labels):
            raise ValueError(f"top_k must be between 1 and {len(self.labels)}, got {top_k}")
        outcomes: list[Outcome] = []
        crops: list[tuple[int, Image.Image]] = []
        for position, crop_or_error in enumerate(self._crop_all(blobs)):
            if isinstance(crop_or_error, ImageError):
                outcomes.append(crop_or_error)
            else:
                outcomes.append(ImageError("not classified"))
                crops.append((position, crop_or_error))
        if crops:
            batch = to_batch([image for _, image in crops], self.spec)
            for (position, _), outcome in zip(crops, self._predict(batch, top_k), strict=True):
                outcomes[position] = outcome
        return outcomes

    def _crop_all(self, blobs: Sequence[bytes]) -> list[Image.Image | ImageError]:
        """Decode in the pool when there is one; torch is kept out of the pool's threads,
        where it would start a second OpenMP team to fight the forward pass's."""
        if self._decode_pool is not None and len(blobs) > 1:
            return list(self._decode_pool.map(self._try_crop, blobs))
        return [self._try_crop(blob) for blob in blobs]

    def _try_crop(self, blob: bytes) -> Image.Image | ImageError:
        try:
            return crop(blob, self.spec)
        except ImageDecodeError as exc:
            return ImageError(str(exc))

    def _predict(self, batch: torch.Tensor, top_k: int) -> list[Outcome]:
        try:
            return self._top_k(self._probabilities(batch), top_k)
        except Exception:
            if len(batch) == 1:
                log.exception("forward pass failed for one image")
                return [ImageError("classification failed: the model could not run on it")]
            log.exception("batched forward pass of %d images failed; retrying singly", len(batch))
        return [
            outcome for i in range(len(batch)) for outcome in self._predict(batch[i : i + 1], top_k)
        ]

    def _probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        with self._lock, torch.inference_mode():
            return torch.softmax(self.model(batch.contiguous(memory_format=layout)), dim=1)

    def _top_k(self, probabilities: torch.Tensor, top_k: int) -> list[Outcome]:
        scores, indices = probabilities.topk(top_k, dim=1)
        outcomes: list[Outcome] = []
        for row_scores, row_indices in zip(scores.tolist(), indices.tolist(), strict=True):
            top = tuple(
                Scored(self.labels[index], score)
                for score, index in zip(row_scores, row_indices, strict=True)
            )
            outcomes.append(Prediction(label=top[0].label, top=top))
        return outcomes
