"""Latency percentiles, as a pure function of the measured values."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0..100) of ascending values, linearly interpolated between
    the two nearest ranks (numpy's default): p50 of [1, 2, 3, 4] is 2.5."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latency figures of one run, in milliseconds."""

    count: int
    min_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float


def summarize(latencies_ms: Iterable[float]) -> LatencySummary | None:
    """Percentiles, extremes and mean of `latencies_ms`; None when there are none."""
    values = sorted(latencies_ms)
    if not values:
        return None
    return LatencySummary(
        count=len(values),
        min_ms=values[0],
        p50_ms=percentile(values, 50),
        p95_ms=percentile(values, 95),
        p99_ms=percentile(values, 99),
        max_ms=values[-1],
        mean_ms=sum(values) / len(values),
    )
