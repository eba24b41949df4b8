"""When an upload makes the controller look at once (two AWS calls), and when it waits."""

from __future__ import annotations

import pytest

from iras.scaler.controller import Point, may_scale_out
from iras.scaler.policy import PolicyState, ScalingConfig

CONFIG = ScalingConfig(min_workers=0, max_workers=2, backlog_per_worker=10, scale_in_cooldown_s=0.5)


def seen(workers: int, starting: int = 0, backlog: int = 0, in_flight: int = 0) -> Point:
    return Point(
        t=0.0, workers=workers, starting=starting, desired=0, backlog=backlog, in_flight=in_flight
    )


@pytest.mark.parametrize(
    ("last", "arriving", "look"),
    [
        (None, 1, True),  # never looked yet
        (seen(workers=0), 1, True),  # a fleet at zero: start a worker before queuing
        (seen(workers=0, starting=1), 1, False),  # one is starting already
        (seen(workers=1), 1, False),  # 1 of work needs ceil(1/10) = 1 worker: there is one
        (seen(workers=1, backlog=8, in_flight=1), 1, False),  # 10 of work: still 1
        (seen(workers=1, backlog=9, in_flight=1), 1, True),  # 11 of work: 2 workers
        (seen(workers=1), 11, True),  # a burst of uploads arriving at once
        (seen(workers=2, backlog=100), 50, False),  # at max_workers already
    ],
)
def test_an_upload_looks_at_once_only_when_it_may_add_workers(
    last: Point | None, arriving: int, look: bool
) -> None:
    assert may_scale_out(last, arriving, CONFIG, PolicyState()) is look
