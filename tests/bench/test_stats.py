"""Percentiles: numpy's linear interpolation, by hand."""

from __future__ import annotations

import pytest

from iras.bench.stats import percentile, summarize


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),  # one value is every percentile
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),  # rank 1.5: halfway between 2 and 3
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([10.0, 20.0, 30.0, 40.0, 50.0], 95, 48.0),  # rank 3.8: 40 + 0.8 * 10
        ([float(v) for v in range(1, 101)], 99, 99.01),  # rank 98.01: 99 + 0.01 * 1
    ],
)
def test_percentile(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_refuses_nothing_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def test_summary_is_ordered_and_sorted_for_the_caller() -> None:
    summary = summarize([300.0, 100.0, 200.0, 1000.0])
    assert summary is not None
    assert summary.count == 4
    assert (summary.min_ms, summary.max_ms, summary.mean_ms) == (100.0, 1000.0, 400.0)
    assert summary.min_ms <= summary.p50_ms <= summary.p95_ms <= summary.p99_ms <= summary.max_ms
    assert summary.p50_ms == 250.0
    assert summarize([]) is None
