"""Tests for the latency objective: its arithmetic in tables, then looks in sequence."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from iras.scaler.objective import fleet_needed, relaunch_cost_s, smoothed
from iras.scaler.policy import (
    Member,
    Observation,
    PolicyState,
    ScalingConfig,
    decide,
    pick_released,
)

# AWS-like: target 10 s, 60 s billed minimum; the looks below pass R = 15/s and B = 40 s.
# So Tb = 0.8 * 10 = 8 s, the settling time 5 s, the relaunch cost K = 60 + 40 = 100 s.
AWS = ScalingConfig(
    min_workers=0,
    max_workers=20,
    backlog_per_worker=10,
    scale_in_cooldown_s=0.5,
    latency_target_s=10.0,
    billing_minimum_s=60.0,
)
FLOOR_1 = replace(AWS, min_workers=1)


def steady(rate: float, **fields: Any) -> PolicyState:
    """A state one look old (at 99) that has seen `rate` arrivals per second for long."""
    base: dict[str, Any] = dict(
        looked_s=99.0, arrival_ips=rate, slow_arrival_ips=rate, last_arrival_s=99.0
    )
    return PolicyState(**{**base, **fields})


def look(**fields: Any) -> Observation:
    """A look at now_s=100 with R = 15/s and B = 40 s, nothing going on but `fields`."""
    base: dict[str, Any] = dict(
        now_s=100.0,
        visible=0,
        in_flight=0,
        arriving=0,
        workers=0,
        starting=0,
        worker_rate_ips=15.0,
        boot_s=40.0,
    )
    return Observation(**{**base, **fields})


@pytest.mark.parametrize(
    ("work", "arrival", "expected"),
    [
        (0, 0.0, 0.0),  # nothing, no one needed
        (0, 150.0, 6000 / 720),  # W <= arrivals x Tb: (0 + 150 x 40) / (15 x (40 + 8))
        (100, 0.0, 100 / 120),  # only work: 100 / (15 x 8)
        (400, 100.0, 4400 / 720),  # 400 <= 800: (400 + 100 x 40) / (15 x 48)
        (2000, 100.0, 2000 / 120),  # 2000 > 800: the fleet must outrun them, 2000 / (15 x 8)
    ],
)
def test_fleet_needed(work: int, arrival: float, expected: float) -> None:
    assert fleet_needed(work, arrival, rate_ips=15.0, boot_s=40.0, queue_s=8.0) == pytest.approx(
        expected
    )


@pytest.mark.parametrize(
    ("boot", "minimum", "target", "expected"),
    [
        (40.0, 60.0, 10.0, 100.0),  # minimum 60, plus the cold boot's 40 that breaks 10 s
        (40.0, 60.0, 60.0, 60.0),  # a boot within the target costs only the minimum
        (90.0, 60.0, 60.0, 180.0),  # a boot past the minimum: 90, and 90 more of wait
        (3.0, 0.0, 5.0, 3.0),  # locally: no minimum, the boot within the target
    ],
)
def test_relaunch_cost(boot: float, minimum: float, target: float, expected: float) -> None:
    assert relaunch_cost_s(boot, minimum, target) == expected


def test_smoothed_rate_follows_a_steady_stream_and_counts_same_instant_looks() -> None:
    rate = 0.0
    for _ in range(200):  # 200 looks 1 s apart, 10 arrivals each
        rate = smoothed(rate, 10, 1.0, tau_s=10.0)
    assert rate == pytest.approx(10.0, rel=1e-6)
    assert smoothed(0.0, 5, 0.0, tau_s=10.0) == 0.5  # two looks at one instant: 5 / tau


@pytest.mark.parametrize(
    ("observation", "config", "state", "expected"),
    [
        # the course's 100 at once, first arrivals: rate 100 x (1 - e^-0.1) = 9.5/s, need
        # (100 + 9.5 x 40) / 720 = 0.67 -> 1: one worker clears them in 6.7 s once up
        (look(visible=100, uploaded=100), AWS, PolicyState(looked_s=99.0), 1),
        # 2000 waiting at 100/s: 2000 / 120 = 16.7 -> 17
        (look(visible=2000, uploaded=100), AWS, steady(100.0), 17),
        # 10,000 waiting: 83 needed, capped at 20
        (look(visible=10_000, uploaded=100), AWS, steady(100.0), 20),
        # the same 100 with one worker starting already: no second launch
        (look(visible=100, starting=1, uploaded=100), AWS, PolicyState(looked_s=99.0), 1),
        # work present and no rate at all (first look): at least one worker
        (look(in_flight=1), AWS, PolicyState(), 1),
        # 150/s, 10 running, nothing waiting: they keep up; steady
        (look(workers=10, uploaded=150, in_flight=80), AWS, steady(150.0), 10),
        # min_workers 1 at rest stays 1
        (look(), FLOOR_1, PolicyState(), 1),
        # nothing waiting, no one up: no launch on the rate alone
        (look(uploaded=0), AWS, steady(5.0), 0),
    ],
)
def test_desired(
    observation: Observation, config: ScalingConfig, state: PolicyState, expected: int
) -> None:
    decision = decide(observation, config, state)
    assert decision.desired == expected, decision.reason
    assert config.min_workers <= decision.desired <= config.max_workers
    assert decision.figures["worker_rate_ips"] == 15.0 and decision.figures["boot_s"] == 40.0


def test_a_surplus_settles_then_half_of_it_goes_if_past_the_billing_minimum() -> None:
    """10 workers, 15/s arriving, nothing waiting: 1 is enough (15.75/s, Tb/2 -> 0.95)."""
    old = (90.0,) * 10
    first = decide(look(workers=10, uploaded=15, ages_s=old), AWS, steady(15.0))
    assert first.desired == 10 and first.recheck_in_s == 5.0  # the settling time
    assert first.state.surplus_since_s == 100.0
    settled = decide(
        look(now_s=105.0, workers=10, uploaded=75, ages_s=old),
        AWS,
        replace(first.state, looked_s=100.0),
    )
    assert settled.desired == 10 - math.ceil(9 / 2), settled.reason  # half the surplus: 5
    assert settled.reason.startswith("scale in") and settled.state.surplus_since_s == 105.0


def test_instances_within_the_billing_minimum_are_kept_until_it_is_up() -> None:
    young = (30.0,) * 10  # 30 s since launch, 30 s of their minimum left
    state = steady(15.0, surplus_since_s=90.0)
    decision = decide(look(workers=10, uploaded=15, ages_s=young), AWS, state)
    assert decision.desired == 10 and "billed minimum" in decision.reason
    assert decision.recheck_in_s == 30.0
    some_paid = (70.0, 65.0) + (30.0,) * 8
    decision = decide(look(workers=10, uploaded=15, ages_s=some_paid), AWS, state)
    assert decision.desired == 8  # half the surplus is 5, but only 2 are past the minimum


def test_the_last_worker_stays_warm_through_a_trickle_and_goes_when_it_stops() -> None:
    # One image a second: quiet time = 10 gaps = 10 s, within [K/4, K] = [25, 100] -> 25 s.
    paid = (500.0,)
    gap = decide(look(now_s=110.0, workers=1, ages_s=paid), AWS, steady(1.0, looked_s=109.0))
    assert gap.desired == 1 and gap.figures["quiet_s"] == 25.0, gap.reason  # 11 s of silence
    # 30 s of silence, past the 25 s: the surplus settles, then the last one goes
    state = steady(1.0, looked_s=128.0, last_arrival_s=99.0)
    silent = decide(look(now_s=129.0, workers=1, ages_s=paid), AWS, state)
    assert silent.desired == 1 and silent.state.surplus_since_s == 129.0
    gone = decide(
        look(now_s=134.0, workers=1, ages_s=paid), AWS, replace(silent.state, looked_s=133.0)
    )
    assert gone.desired == 0 and gone.reason.startswith("scale in: nothing for 35 s"), gone.reason


def test_min_workers_is_a_floor_even_when_quiet() -> None:
    state = steady(1.0, last_arrival_s=0.0, surplus_since_s=10.0)
    decision = decide(look(workers=3, ages_s=(500.0,) * 3), FLOOR_1, state)
    assert decision.desired == 2  # half of the surplus of 2 above the floor of 1
    assert decide(look(workers=1, ages_s=(500.0,)), FLOOR_1, state).desired == 1


def test_a_fleet_raised_by_a_burst_falls_gradually_under_a_trickle() -> None:
    """The issue's case: 20 workers after a burst, then a few images a second with a few
    always waiting. The fleet falls without ever rising again, and never to 0."""
    fleet, state, now = 20, steady(150.0), 100.0
    sizes = []
    for _ in range(60):  # one look a second
        now += 1.0
        decision = decide(
            look(now_s=now, workers=fleet, visible=2, uploaded=3, ages_s=(300.0,) * fleet),
            AWS,
            state,
        )
        assert decision.desired <= fleet, decision.reason
        fleet, state = decision.desired, decision.state
        sizes.append(fleet)
    assert sizes[-1] == 1 and min(sizes) == 1
    assert sizes.index(1) < 40  # the arrival estimate follows in ~10 s, then halving steps


@pytest.mark.parametrize(
    ("members", "minimum", "expected"),
    [
        # locally (no minimum): starting first, then the newest
        ([("a", False, 100), ("b", False, 5), ("c", True, 1)], 0.0, ["c", "b", "a"]),
        # AWS: past the minimum first (newest of them first), then the oldest of the young
        (
            [("a", False, 100), ("b", False, 70), ("c", True, 5), ("d", False, 30)],
            60.0,
            ["b", "a", "d", "c"],
        ),
    ],
)
def test_pick_released(
    members: list[tuple[str, bool, float]], minimum: float, expected: list[str]
) -> None:
    fleet = [Member(key, starting, age) for key, starting, age in members]
    assert pick_released(fleet, len(fleet), minimum) == expected
    assert pick_released(fleet, 1, minimum) == expected[:1]
    assert pick_released(fleet, 0, minimum) == []
