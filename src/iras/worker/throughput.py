"""What a worker reports of its own speed: images per second of busy time.

The autoscaler sizes the fleet from one worker's throughput, and only the worker can
measure it honestly. Not images per second of wall time (an idle worker would report
nothing, and a half-loaded one half its capacity), and not one batch's images over its
inference time either: the worker classifies up to two batches at once (one decoding
while the other runs the network), so each batch's own time overlaps the other's and
dividing by it would count the overlap twice and halve the rate. Busy time is when at
least one batch is classifying: the length of the union of the recent batches' spans.

Pure arithmetic over spans the caller timed (a monotonic clock, in seconds); the window
is a count of batches, so a busy worker's figure follows its recent load and an idle
one's keeps what it last showed. At low load batches are small and the rate is below what
a full queue gets (batching is what makes a worker fast): a conservative figure.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

#: Batches whose spans the rate is taken over.
RECENT_BATCHES = 20


@dataclass(frozen=True, slots=True)
class Span:
    """One batch's classification: when it began and ended, and its images."""

    started_s: float
    finished_s: float
    images: int


def busy_s(spans: Iterable[Span]) -> float:
    """Seconds in which at least one of `spans` was running (their union's length)."""
    total = 0.0
    open_start: float | None = None
    open_end = 0.0
    for span in sorted(spans, key=lambda s: s.started_s):
        start, end = span.started_s, max(span.started_s, span.finished_s)
        if open_start is None or start > open_end:
            if open_start is not None:
                total += open_end - open_start
            open_start, open_end = start, end
        else:
            open_end = max(open_end, end)
    if open_start is not None:
        total += open_end - open_start
    return total


def rate_ips(spans: Iterable[Span]) -> float | None:
    """Images per busy second over `spans`; None with no busy time to divide by."""
    spans = list(spans)
    busy = busy_s(spans)
    if busy <= 0:
        return None
    return sum(span.images for span in spans) / busy


class Throughput:
    """A worker's recent batches, and its rate over them."""

    def __init__(self, batches: int = RECENT_BATCHES) -> None:
        self._spans: deque[Span] = deque(maxlen=batches)

    def batch_done(self, started_s: float, finished_s: float, images: int) -> None:
        self._spans.append(Span(started_s, finished_s, images))

    @property
    def rate_ips(self) -> float | None:
        return rate_ips(self._spans)
