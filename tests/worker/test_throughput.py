"""A worker's images per busy second: the union of its batches' spans, not their sum."""

from __future__ import annotations

import pytest

from iras.worker.throughput import Span, Throughput, busy_s, rate_ips


@pytest.mark.parametrize(
    ("spans", "busy", "rate"),
    [
        ([], 0.0, None),  # nothing classified yet
        ([Span(0, 0, 4)], 0.0, None),  # no time to divide by
        ([Span(0, 2, 10)], 2.0, 5.0),  # 10 images / 2 s
        # Two batches at once, the second half inside the first: busy 0..3 = 3 s, not
        # 2 + 2 = 4 s; 8 + 4 images / 3 s = 4/s.
        ([Span(0, 2, 8), Span(1, 3, 4)], 3.0, 4.0),
        # One inside the other: busy is the outer one's 4 s; 6 images / 4 s.
        ([Span(0, 4, 3), Span(1, 2, 3)], 4.0, 1.5),
        # Idle between batches is not busy time: 1 + 1 s, 4 images / 2 s.
        ([Span(0, 1, 2), Span(10, 11, 2)], 2.0, 2.0),
        # Touching spans join; order of arrival does not matter: 0..3 = 3 s, 9 / 3.
        ([Span(2, 3, 3), Span(0, 1, 3), Span(1, 2, 3)], 3.0, 3.0),
        # A span that ends before it starts (a clock oddity) counts as no time: 0..1.
        ([Span(0, 1, 2), Span(5, 4, 2)], 1.0, 4.0),
    ],
)
def test_busy_time_is_the_union_of_the_spans(
    spans: list[Span], busy: float, rate: float | None
) -> None:
    assert busy_s(spans) == pytest.approx(busy)
    assert rate_ips(spans) == (None if rate is None else pytest.approx(rate))


def test_the_rate_follows_the_recent_batches_only() -> None:
    throughput = Throughput(batches=2)
    assert throughput.rate_ips is None
    throughput.batch_done(0.0, 1.0, 1)  # slow: 1/s
    throughput.batch_done(1.0, 2.0, 1)
    assert throughput.rate_ips == pytest.approx(1.0)
    throughput.batch_done(5.0, 6.0, 8)  # the first batch drops out: (1 + 8) / 2 s
    assert throughput.rate_ips == pytest.approx(4.5)
    throughput.batch_done(6.0, 7.0, 8)
    assert throughput.rate_ips == pytest.approx(8.0)
