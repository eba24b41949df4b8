"""What a classification produces, shared by the model, the worker, the gateway and the CLI.

A failed decode is an `ImageError` value rather than an exception because one bad upload
must not fail the other images of its batch: the worker turns each outcome into one result
message, whichever kind it is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scored:
    """One class name with its softmax probability (0..1)."""

    label: str
    score: float


@dataclass(frozen=True, slots=True)
class Prediction:
    """The best label of one image and the ranked top-k it was chosen from.

    `label` repeats `top[0].label` because it is what almost every reader wants.
    """

    label: str
    top: tuple[Scored, ...]


@dataclass(frozen=True, slots=True)
class ImageError:
    """An image that could not be classified, with a short human-readable reason."""

    reason: str


Outcome = Prediction | ImageError


@dataclass(frozen=True, slots=True)
class TimedOutcomes:
    """A batch's outcomes and where its time went, for the worker's per-stage metrics.

    `decode_s`: decoding, cropping and stacking the images; `forward_s`: the network's
    forward passes (a failed batch's single retries included). Waiting for the model's
    lock and ranking the labels are in neither, so the two add up to at most the call.
    """

    outcomes: list[Outcome]
    decode_s: float
    forward_s: float
