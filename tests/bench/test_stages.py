"""The split of a latency into stages, and the figures per stage, by hand."""

from __future__ import annotations

from typing import Any

import pytest

from iras.bench.stages import STAGES, breakdown, split

#: A worker's timings before `decode_ms`: decoding is inside `inference_ms`.
OLD = {"queue_ms": 20.0, "download_ms": 10.0, "inference_ms": 50.0, "batch_size": 4.0}
#: A worker's timings with `decode_ms`: `inference_ms` is the forward pass alone.
NEW = {**OLD, "decode_ms": 15.0, "inference_ms": 35.0, "worker_up_s": 3.0}


@pytest.mark.parametrize(
    ("end_to_end_ms", "timings", "stages_ms", "clamped"),
    [
        # 100 - (20 + 10 + 50) = 20 left for the rest; no decode stage
        (100.0, OLD, {"queue": 20, "download": 10, "inference": 50, "rest": 20}, False),
        # 100 - (20 + 10 + 15 + 35) = 20
        (100.0, NEW, {"queue": 20, "download": 10, "decode": 15, "inference": 35, "rest": 20}, False),
        # exactly the stages: nothing left, not clamped
        (80.0, OLD, {"queue": 20, "download": 10, "inference": 50, "rest": 0}, False),
        # 70 - 80 = -10: clocks disagree; the rest is 0, and the split says so
        (70.0, OLD, {"queue": 20, "download": 10, "inference": 50, "rest": 0}, True),
        # a negative figure (skewed clocks) counts as 0: 100 - (0 + 10 + 50) = 40
        (100.0, {**OLD, "queue_ms": -5.0}, {"queue": 0, "download": 10, "inference": 50, "rest": 40}, False),
        # whole numbers are numbers; decode_ms null is "not measured"
        (100, {"queue_ms": 1, "download_ms": 2, "inference_ms": 3, "decode_ms": None},
         {"queue": 1, "download": 2, "inference": 3, "rest": 94}, False),
    ],
)  # fmt: skip
def test_split(
    end_to_end_ms: float, timings: dict[str, Any], stages_ms: dict[str, float], clamped: bool
) -> None:
    done = split(end_to_end_ms, timings)
    assert done is not None
    assert dict(done.stages_ms) == stages_ms
    assert list(done.stages_ms) == [stage for stage in STAGES if stage in stages_ms]  # in order
    assert done.clamped is clamped
    assert done.end_to_end_ms == end_to_end_ms


@pytest.mark.parametrize(
    "timings",
    [
        None,  # the course's /upload: no timings at all
        {},  # an input that was gone: an empty timings object
        {"download_ms": 10.0, "inference_ms": 50.0},  # no queue_ms
        {**OLD, "inference_ms": "fast"},  # not a number
        {**OLD, "download_ms": True},  # a bool is no duration
        {**NEW, "decode_ms": "15"},  # decode may be absent, not malformed
    ],
)
def test_timings_that_cannot_be_split(timings: dict[str, Any] | None) -> None:
    assert split(100.0, timings) is None


def test_breakdown_figures_and_shares() -> None:
    splits = [
        split(100.0, OLD),  # rest 20
        split(200.0, OLD),  # rest 120
        split(70.0, OLD),  # rest -10 -> 0, clamped
        None,  # an answer without timings
    ]
    figures = breakdown(splits)
    assert figures is not None
    assert list(figures.stages) == ["queue", "download", "inference", "rest"]
    assert (figures.clamped, figures.without_timings, figures.decode_in_inference) == (1, 1, 3)
    assert figures.end_to_end.count == 3
    assert figures.end_to_end.mean_ms == pytest.approx(370 / 3)
    rest = figures.stages["rest"]
    assert (rest.p50_ms, rest.mean_ms) == (20.0, pytest.approx(140 / 3))  # of 0, 20, 120
    assert rest.p95_ms == pytest.approx(110.0)  # rank 1.9: 20 + 0.9 * 100
    assert rest.share == pytest.approx(140 / 370)
    assert figures.stages["inference"].share == pytest.approx(150 / 370)
    # the clamp adds 10 ms no latency had: the shares overshoot by 10 / 370
    assert sum(f.share for f in figures.stages.values()) == pytest.approx(380 / 370)


def test_decode_from_part_of_the_fleet() -> None:
    # One old worker's answer and one new one's: decode is a stage of the new one only,
    # and its share is of both answers' time.
    figures = breakdown([split(100.0, OLD), split(100.0, NEW)])
    assert figures is not None
    decode = figures.stages["decode"]
    assert (decode.count, decode.p50_ms, decode.share) == (1, 15.0, pytest.approx(15 / 200))
    assert figures.decode_in_inference == 1
    assert sum(f.share for f in figures.stages.values()) == pytest.approx(1.0)  # no clamp


def test_json_shape() -> None:
    figures = breakdown([split(100.0, NEW), split(300.0, NEW)])
    assert figures is not None
    stages = figures.to_json()
    assert list(stages) == list(STAGES)
    assert stages["rest"] == {"p50_ms": 120.0, "p95_ms": 210.0, "mean_ms": 120.0, "share": 0.6}
    assert stages["queue"] == {"p50_ms": 20.0, "p95_ms": 20.0, "mean_ms": 20.0, "share": 0.1}
    assert figures.counts_json() == {
        "split": 2, "clamped": 0, "without_timings": 0, "decode_in_inference": 0,
    }  # fmt: skip


def test_nothing_to_split() -> None:
    assert breakdown([]) is None
    assert breakdown([None, None]) is None
