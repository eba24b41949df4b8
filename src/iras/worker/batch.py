"""A batch on its way through the worker: downloaded images and the results made of them.

Pure data and pure functions: which messages are classifiable, which already have an
answer (an input that is gone), which must come back later (a download that failed for
a reason that may pass), and the `Result` for each outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry.trace import Span

from iras.messages import Request, Result
from iras.model import ImageError, Outcome
from iras.worker.publishing import Outgoing
from iras.worker.receiving import Received


@dataclass(slots=True)
class Batch:
    """Messages taken together from the inbox, sorted by what happens to them next."""

    images: list[tuple[Received, bytes]] = field(default_factory=list)
    missing: list[Received] = field(default_factory=list)  # input object gone: an error result
    retry: list[Received] = field(default_factory=list)  # to be delivered again
    malformed: list[Received] = field(default_factory=list)  # not an IRAS request at all
    download_ms: float = 0.0
    span: Span | None = None  # `iras.batch`, ended once its results are published

    @property
    def messages(self) -> list[Received]:
        classifiable = [received for received, _ in self.images]
        return classifiable + self.missing + self.retry + self.malformed


def make_result(
    request: Request,
    outcome: Outcome,
    *,
    model: str,
    worker: str,
    timings: dict[str, float],
    model_version: str = "",
) -> Result:
    """The result that answers `request` with `outcome`."""
    if isinstance(outcome, ImageError):
        label, top, error = None, [], outcome.reason
    else:
        label, error = outcome.label, None
        top = [{"label": scored.label, "score": round(scored.score, 6)} for scored in outcome.top]
    return Result(
        request_id=request.request_id,
        job_id=request.job_id,
        name=request.name,
        model=model,
        model_version=model_version,
        worker=worker,
        label=label,
        top=top,
        error=error,
        timings=timings,
    )


def queue_wait_ms(received: Received) -> float:
    """How long a request waited between its submission and this worker receiving it."""
    assert received.request is not None
    return max(0.0, (received.received_at - received.request.submitted_at) * 1000.0)


def answer_batch(
    images: Sequence[tuple[Received, bytes]],
    outcomes: Sequence[Outcome],
    *,
    model: str,
    worker: str,
    batch_timings: dict[str, float],
    model_version: str = "",
) -> list[Outgoing]:
    """Pair each classified message with its result."""
    outgoing = []
    for (received, _), outcome in zip(images, outcomes, strict=True):
        assert received.request is not None
        timings = {"queue_ms": round(queue_wait_ms(received), 1), **batch_timings}
        result = make_result(
            received.request,
            outcome,
            model=model,
            model_version=model_version,
            worker=worker,
            timings=timings,
        )
        outgoing.append(Outgoing(received, result))
    return outgoing
