"""`Classifier.classify_timed`: the outcomes of `classify`, with decode and forward-pass
time told apart (the worker's `decode_ms` and `inference_ms`)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from iras.model import Classifier, ImageError, Prediction
from iras.model.engine import Probabilities
from iras.model.preprocess import EFFICIENTNET_LITE_SPEC, Pixels
from tests.model.images import encode, pattern, png_bomb

#: The stand-in engine's forward pass, long beside any decode of these small images.
FORWARD_S = 0.2


class _SlowEngine:
    """A forward pass that takes `FORWARD_S` and fails on bright images, as a real one
    might on a bad input (the classifier then retries image by image)."""

    name = "slow"

    def __init__(self) -> None:
        self.calls = 0

    def run(self, pixels: Pixels) -> Probabilities:
        self.calls += 1
        time.sleep(FORWARD_S)
        if (pixels.mean(axis=(1, 2, 3)) > 230).any():
            raise RuntimeError("simulated failure")
        return np.full((len(pixels), 1000), 1 / 1000, dtype=np.float32)


def _pictures(count: int) -> list[bytes]:
    return [encode(pattern().rotate(30 * i), "JPEG") for i in range(count)]


def test_the_real_model_reports_decode_and_forward_within_the_call(
    classifier: Classifier,
) -> None:
    blobs = _pictures(4)
    started = time.perf_counter()
    timed = classifier.classify_timed(blobs)
    whole_s = time.perf_counter() - started

    assert timed.outcomes == classifier.classify(blobs)
    assert all(isinstance(outcome, Prediction) for outcome in timed.outcomes)
    assert timed.decode_s > 0 and timed.forward_s > 0
    assert timed.decode_s + timed.forward_s <= whole_s


def test_forward_time_is_the_passes_alone_not_the_wait_for_the_lock() -> None:
    """Two batches at once: the second waits for the first's forward pass, and that
    wait is neither decode nor inference."""
    classifier = Classifier("slow", _SlowEngine(), EFFICIENTNET_LITE_SPEC)
    blobs = _pictures(2)
    whole: list[float] = []
    timed = []

    def one_batch() -> None:
        started = time.perf_counter()
        timed.append(classifier.classify_timed(blobs))
        whole.append(time.perf_counter() - started)

    threads = [threading.Thread(target=one_batch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert max(whole) >= 2 * FORWARD_S  # the later batch waited for the lock
    for batch in timed:
        assert FORWARD_S <= batch.forward_s < 1.5 * FORWARD_S
        assert batch.decode_s < FORWARD_S


def test_forward_time_adds_up_a_failed_batch_and_its_single_retries() -> None:
    engine = _SlowEngine()
    classifier = Classifier("slow", engine, EFFICIENTNET_LITE_SPEC)
    dark = encode(pattern().point(lambda v: v // 4), "PNG")
    bright = encode(pattern().point(lambda v: 255), "PNG")

    timed = classifier.classify_timed([dark, bright])

    assert engine.calls == 3  # the batch, then each image alone
    assert [type(outcome) for outcome in timed.outcomes] == [Prediction, ImageError]
    assert timed.forward_s == pytest.approx(3 * FORWARD_S, abs=FORWARD_S / 2)


def test_a_batch_of_undecodable_images_has_decode_time_and_no_forward_pass() -> None:
    engine = _SlowEngine()
    classifier = Classifier("slow", engine, EFFICIENTNET_LITE_SPEC)

    timed = classifier.classify_timed([b"", png_bomb()])

    assert engine.calls == 0
    assert all(isinstance(outcome, ImageError) for outcome in timed.outcomes)
    assert timed.decode_s > 0 and timed.forward_s == 0
