"""`Classifier.classify`: one outcome per image, in order, whatever its batch-mates do."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from iras.model import Classifier, ImageError, Outcome, Prediction
from iras.model.engine import Probabilities
from iras.model.labels import imagenet_labels
from iras.model.preprocess import EFFICIENTNET_LITE_SPEC, Pixels
from tests.model.images import animated_gif, encode, in_mode, pattern, png_bomb
from tests.model.test_preprocess import BAD_INPUTS, MODES_AND_FORMATS


@pytest.mark.parametrize(("mode", "fmt"), MODES_AND_FORMATS)
def test_every_mode_and_format_gets_a_prediction(
    classifier: Classifier, mode: str, fmt: str
) -> None:
    [outcome] = classifier.classify([encode(in_mode(mode), fmt)])
    assert isinstance(outcome, Prediction)
    assert outcome.label in imagenet_labels()


def test_first_frame_of_an_animated_gif_gets_a_prediction(classifier: Classifier) -> None:
    [outcome] = classifier.classify([animated_gif((255, 0, 0), (0, 0, 255))])
    assert isinstance(outcome, Prediction)


def test_prediction_carries_ranked_top_k(classifier: Classifier) -> None:
    [outcome] = classifier.classify([encode(pattern(), "PNG")], top_k=7)
    assert isinstance(outcome, Prediction)
    scores = [scored.score for scored in outcome.top]
    assert len(outcome.top) == 7
    assert outcome.label == outcome.top[0].label
    assert scores == sorted(scores, reverse=True)
    assert 0 < sum(scores) <= 1 + 1e-6
    assert len({scored.label for scored in outcome.top}) == 7


@pytest.mark.parametrize("top_k", [0, -1, 1001])
def test_top_k_out_of_range_is_refused(classifier: Classifier, top_k: int) -> None:
    with pytest.raises(ValueError, match="top_k"):
        classifier.classify([encode(pattern(), "PNG")], top_k=top_k)


def _checkerboard() -> Image.Image:
    board = Image.new("L", (8, 8))
    board.putdata([255 * ((x + y) % 2) for y in range(8) for x in range(8)])
    return board.resize((128, 128), Image.Resampling.NEAREST)


def _stripes() -> Image.Image:
    column = Image.new("L", (1, 16))
    column.putdata([255 * (y % 2) for y in range(16)])
    return column.resize((128, 128), Image.Resampling.NEAREST)


def _distinct_images() -> list[bytes]:
    """Five synthetic pictures the model labels apart, each with a clear top label
    (margin over the second > 0.03), so batch-size numerics cannot swap them."""
    images = [
        pattern(),
        Image.radial_gradient("L"),
        _stripes(),
        Image.effect_mandelbrot((128, 128), (-2, -1.5, 1, 1.5), 50),
        _checkerboard(),
    ]
    return [encode(image.convert("RGB"), "PNG") for image in images]


def _labels(outcomes: list[Outcome]) -> list[str]:
    return [outcome.label if isinstance(outcome, Prediction) else "?" for outcome in outcomes]


def test_order_of_outputs_is_order_of_inputs(classifier: Classifier) -> None:
    blobs = _distinct_images()
    alone = [classifier.classify([blob])[0] for blob in blobs]
    assert len(set(_labels(alone))) > 1  # the images are told apart, so order shows
    assert _labels(classifier.classify(blobs)) == _labels(alone)
    assert _labels(classifier.classify(blobs[::-1])) == _labels(alone)[::-1]


@pytest.mark.parametrize(("bad", "phrase"), BAD_INPUTS)
def test_a_bad_image_does_not_disturb_its_batch_mates(
    classifier: Classifier, bad: bytes, phrase: str
) -> None:
    good = _distinct_images()[:2]
    outcomes = classifier.classify([good[0], bad, good[1]])
    assert isinstance(outcomes[1], ImageError)
    assert phrase in outcomes[1].reason
    expected = classifier.classify(good)
    for got, want in zip([outcomes[0], outcomes[2]], expected, strict=True):
        assert isinstance(got, Prediction) and isinstance(want, Prediction)
        assert got.label == want.label
        assert got.top[0].score == pytest.approx(want.top[0].score, abs=1e-4)


def test_a_batch_of_only_bad_images_gives_only_errors(classifier: Classifier) -> None:
    outcomes = classifier.classify([b"", png_bomb()])
    assert all(isinstance(outcome, ImageError) for outcome in outcomes)
    assert classifier.classify([]) == []


class _FailsOnBrightImages:
    """A stand-in engine whose forward pass raises when any image in it is bright."""

    name = "fails-on-bright"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def run(self, pixels: Pixels) -> Probabilities:
        self.calls.append(len(pixels))
        if (pixels.mean(axis=(1, 2, 3)) > 230).any():
            raise RuntimeError("simulated failure")
        scores = np.arange(1000, dtype=np.float32)
        return np.tile(scores / scores.sum(), (len(pixels), 1))


def test_a_failing_forward_pass_is_retried_image_by_image() -> None:
    engine = _FailsOnBrightImages()
    classifier = Classifier("fails-on-bright", engine, EFFICIENTNET_LITE_SPEC)
    dark = encode(pattern().point(lambda v: v // 4), "PNG")
    bright = encode(pattern().point(lambda v: 255), "PNG")

    outcomes = classifier.classify([dark, bright, dark])

    assert engine.calls == [3, 1, 1, 1]
    assert [type(outcome) for outcome in outcomes] == [Prediction, ImageError, Prediction]
    assert _labels(outcomes[::2]) == [imagenet_labels()[999]] * 2


def test_forward_pass_is_deterministic(classifier: Classifier) -> None:
    blobs = _distinct_images()
    assert classifier.classify(blobs) == classifier.classify(blobs)
