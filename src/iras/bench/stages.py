"""Where an image's time goes: its client-seen latency split into the pipeline's stages.

Pure arithmetic on what a result's `timings` say (`iras.worker.batch`), no I/O. The worker
measures four stages an image lives through: `queue` (from the gateway's submission until
a worker received the request, `queue_ms`), `download` (the batch's images read from S3,
`download_ms`), `decode` (the batch's images decoded and preprocessed, `decode_ms`) and
`inference` (the batch's forward pass, `inference_ms`). The batch figures are the image's
own, for every image of a batch waits for all of its batch's downloads and its one
forward pass. Workers older than `decode_ms` decode inside `inference_ms`: their results
have no decode stage and their inference includes it.

Everything else is `rest`: the upload and the gateway storing the image before it submits
(the bench cannot see the moment the gateway accepted a request, so the upload is here),
the worker's waits between the stages (batching, a busy model), publishing the result,
its way back through the reply queue and the gateway, and the client. `rest` is the
end-to-end latency minus the known stages, never negative: when the stages add up to more
(the gateway's and the worker's clocks disagree, or rounding), it is 0 and the split is
counted as clamped, so a reader knows the shares there overshoot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from iras.bench.stats import summarize

#: The stages in pipeline order, each with the timing key that measures it (`rest` has none).
MEASURED_STAGES = (
    ("queue", "queue_ms"),
    ("download", "download_ms"),
    ("decode", "decode_ms"),
    ("inference", "inference_ms"),
)
REST = "rest"
STAGES = (*(stage for stage, _ in MEASURED_STAGES), REST)
#: A stage a result may lack and still be split: older workers measure no decode.
OPTIONAL_STAGES = frozenset({"decode"})
#: What `rest` holds, for tables and charts.
REST_MEANING = "upload, gateway, worker waits, publish, reply, client"


@dataclass(frozen=True, slots=True)
class Split:
    """One image's end-to-end latency and its stages, in milliseconds."""

    end_to_end_ms: float
    stages_ms: Mapping[str, float]  # in STAGES order; `decode` absent when not measured
    clamped: bool = False  # the measured stages exceeded end to end: `rest` was set to 0


def split(end_to_end_ms: float, timings: Mapping[str, Any] | None) -> Split | None:
    """The stages of one image, or None when its timings cannot say (none at all, as from
    the course's `/upload` or for an input that was gone, or a stage other than `decode`
    missing or not a number)."""
    if not timings:
        return None
    stages_ms: dict[str, float] = {}
    for stage, key in MEASURED_STAGES:
        value = timings.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            if stage in OPTIONAL_STAGES and value is None:
                continue
            return None
        stages_ms[stage] = max(0.0, float(value))
    rest_ms = end_to_end_ms - sum(stages_ms.values())
    stages_ms[REST] = max(0.0, rest_ms)
    return Split(end_to_end_ms, stages_ms, clamped=rest_ms < 0)


@dataclass(frozen=True, slots=True)
class StageFigures:
    """One stage over a run: percentiles and mean of the images that had it, and its
    share of the mean end-to-end latency (its total over every split image's total)."""

    count: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    share: float


@dataclass(frozen=True, slots=True)
class Breakdown:
    """The stages of a run's answered images."""

    end_to_end: StageFigures
    stages: Mapping[str, StageFigures]  # in STAGES order, only stages some image had
    clamped: int  # splits whose `rest` was clamped to 0
    without_timings: int  # answered images whose timings could not be split

    @property
    def decode_in_inference(self) -> int:
        """Splits without a decode stage: their inference includes the decoding."""
        decode = self.stages.get("decode")
        return self.end_to_end.count - (decode.count if decode else 0)

    def to_json(self) -> dict[str, dict[str, float]]:
        """The contract's `stages` object: stage -> {p50_ms, p95_ms, mean_ms, share}."""
        return {
            stage: {
                "p50_ms": round(figures.p50_ms, 1),
                "p95_ms": round(figures.p95_ms, 1),
                "mean_ms": round(figures.mean_ms, 1),
                "share": round(figures.share, 3),
            }
            for stage, figures in self.stages.items()
        }

    def counts_json(self) -> dict[str, int]:
        """How many images the split covers, and how many it could not or had to clamp."""
        return {
            "split": self.end_to_end.count,
            "clamped": self.clamped,
            "without_timings": self.without_timings,
            "decode_in_inference": self.decode_in_inference,
        }


def breakdown(splits: Iterable[Split | None]) -> Breakdown | None:
    """Figures per stage of the splits (a None is an image without timings); None when
    no image could be split."""
    given = list(splits)
    done = [s for s in given if s is not None]
    if not done:
        return None
    total_ms = sum(s.end_to_end_ms for s in done)
    by_stage = {
        stage: [s.stages_ms[stage] for s in done if stage in s.stages_ms] for stage in STAGES
    }
    return Breakdown(
        end_to_end=_figures([s.end_to_end_ms for s in done], total_ms),
        stages={stage: _figures(values, total_ms) for stage, values in by_stage.items() if values},
        clamped=sum(s.clamped for s in done),
        without_timings=len(given) - len(done),
    )


def _figures(values_ms: Sequence[float], total_ms: float) -> StageFigures:
    """A stage's figures: the bench's own latency summary of it, and its share."""
    summary = summarize(values_ms)
    assert summary is not None, "a stage is figured only when some image had it"
    return StageFigures(
        count=summary.count,
        p50_ms=summary.p50_ms,
        p95_ms=summary.p95_ms,
        mean_ms=summary.mean_ms,
        share=sum(values_ms) / total_ms if total_ms > 0 else 0.0,
    )
