"""The oracle: the cheapest lives by hand, and on every generator never under the work."""

from __future__ import annotations

import math

import pytest

from iras.simulation import oracle
from iras.simulation.traces import GENERATORS, generate
from iras.simulation.types import Fleet

FLEET = Fleet(boot_s=40.0, worker_rate_ips=15.0, max_workers=20)
TARGET_S = 10.0


@pytest.mark.parametrize(
    ("spans", "boot_s", "minimum_s", "lives"),
    [
        ([], 40.0, 60.0, []),
        ([(0.0, 1.0)], 40.0, 60.0, [(0, 0)]),
        # gap 29 < boot 40: one life 0-40 .. 31 bills 71, two bill 60 + 60 = 120
        ([(0.0, 1.0), (30.0, 31.0)], 40.0, 60.0, [(0, 1)]),
        # gap 199: one life bills 241, two bill 60 + 60 = 120
        ([(0.0, 1.0), (200.0, 201.0)], 40.0, 60.0, [(0, 0), (1, 1)]),
        # no boot, gap 49: bridging is free within the minimum (one life: 60, two: 120)
        ([(0.0, 1.0), (50.0, 51.0)], 0.0, 60.0, [(0, 1)]),
        # no boot, no minimum: every gap is worth cutting
        ([(0.0, 1.0), (2.0, 3.0), (5.0, 6.0)], 0.0, 0.0, [(0, 0), (1, 1), (2, 2)]),
        # boot 40: gaps of 30 bridged, the gap of 100 cut (keeping it: 100; cutting: 40)
        (
            [(0.0, 10.0), (40.0, 50.0), (150.0, 160.0), (190.0, 200.0)],
            40.0,
            60.0,
            [(0, 1), (2, 3)],
        ),
    ],
)
def test_cheapest_lives_by_hand(
    spans: list[tuple[float, float]],
    boot_s: float,
    minimum_s: float,
    lives: list[tuple[int, int]],
) -> None:
    assert oracle.cheapest_lives(spans, boot_s, minimum_s) == lives


def short(name: str, seed: int) -> list[float]:
    """The trace's first 10 minutes (the course's rounds at 0 and 5 min, a spike or two)."""
    return [t for t in generate(name, seed) if t < 600.0]


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_the_oracle_never_bills_less_than_the_work_and_answers_in_time(name: str) -> None:
    arrivals = short(name, 1)
    run = oracle.oracle(arrivals, FLEET, TARGET_S)
    assert run.instance_seconds >= run.busy_seconds == len(arrivals) / 15
    assert all(math.isfinite(latency) for latency in run.latencies_s)  # every image answered
    # Within the target, give or take one batch where the replay batched differently.
    assert max(run.latencies_s) <= TARGET_S + FLEET.batch_size / FLEET.worker_rate_ips
    on_time = sum(latency <= TARGET_S + 1e-9 for latency in run.latencies_s)
    assert on_time >= 0.999 * len(arrivals)


def test_the_oracle_launches_one_boot_ahead_and_releases_after_the_minimum() -> None:
    # 100 images at 0..0.99 (the course's round). One worker ready at the first arrival
    # ends them all by 100/15 = 6.7 s, within the target: launched one boot (40 s) before,
    # billed its minimum once. (Ready at the first image's deadline instead, it took 8.)
    arrivals = [i / 100 for i in range(100)]
    lives = oracle.schedule(oracle.plan(arrivals, FLEET, TARGET_S))
    [life] = lives
    assert life.ready_s == 0.0 and life.launched_s == -40.0
    run = oracle.replay(arrivals, FLEET, lives)
    assert max(run.latencies_s) <= TARGET_S
    assert max(run.latencies_s) == pytest.approx(100 / 15 - 0.99, abs=0.6)
    assert run.instance_seconds == 60.0


def test_a_trickle_keeps_one_worker_rather_than_relaunching() -> None:
    arrivals = [float(t) for t in range(600)]  # one image a second
    run = oracle.oracle(arrivals, FLEET, TARGET_S)
    [worker] = run.workers
    assert worker.stopped_s is not None
    # launched 40 s before its first batch (ready at the first arrival), kept to the last image
    assert run.instance_seconds == pytest.approx(worker.stopped_s - worker.launched_s)
    assert run.instance_seconds < 600 + 40 + 1
