"""Tests for the pure scaling policy: tables with the arithmetic, then simulated periods."""

from __future__ import annotations

import math
from typing import Any

import pytest

from iras.scaler.policy import Decision, Observation, PolicyState, ScalingConfig, decide

# min 0, max 2 (the core count here), 10 requests per worker, 5 s cooldown.
CONFIG = ScalingConfig(min_workers=0, max_workers=2, backlog_per_worker=10, scale_in_cooldown_s=5)
WIDE = ScalingConfig(min_workers=0, max_workers=20, backlog_per_worker=10, scale_in_cooldown_s=5)
FLOOR_1 = ScalingConfig(min_workers=1, max_workers=4, backlog_per_worker=10, scale_in_cooldown_s=5)
IDLE = PolicyState()
BUSY_AT_98 = PolicyState(last_busy_s=98.0)
BUSY_AT_90 = PolicyState(last_busy_s=90.0)
# busy at 90, first found idle at 94: the cooldown runs from 94
IDLE_SINCE_94 = PolicyState(last_busy_s=90.0, idle_since_s=94.0)


def observe(**fields: Any) -> Observation:
    """An observation at now_s=100 with nothing going on, except the given fields."""
    base: dict[str, Any] = dict(
        now_s=100.0, visible=0, in_flight=0, arriving=0, workers=0, starting=0
    )
    return Observation(**{**base, **fields})


@pytest.mark.parametrize(
    ("observation", "config", "state", "expected"),
    [
        # work 0, never busy -> min_workers 0
        (observe(), CONFIG, IDLE, 0),
        # work 0+0+1 = 1 -> ceil(1/10) = 1; a fleet at 0 starts before anything is queued
        (observe(arriving=1), CONFIG, IDLE, 1),
        # work 1 -> ceil(1/10) = 1
        (observe(visible=1), CONFIG, IDLE, 1),
        # work 100 -> ceil(100/10) = 10, capped at max 2
        (observe(visible=100), CONFIG, IDLE, 2),
        # work 37 -> ceil(37/10) = 4, under max 20
        (observe(visible=37), WIDE, IDLE, 4),
        # work 20+15+5 = 40 -> ceil(40/10) = 4: all three parts count
        (observe(visible=20, in_flight=15, arriving=5), WIDE, IDLE, 4),
        # work 5 -> needs 1, current 3 -> max(3, 1) = 3: no scale-in while there is work
        (observe(visible=5, workers=3), WIDE, IDLE, 3),
        # work 5 in flight only -> still work: max(3, 1) = 3
        (observe(in_flight=5, workers=3), WIDE, IDLE, 3),
        # work 30 -> needs 3, current 1 running + 2 starting = 3 -> 3 (no double launch)
        (observe(visible=30, workers=1, starting=2), WIDE, IDLE, 3),
        # work 50 -> needs 5, current 1 + 1 = 2 -> 5
        (observe(visible=50, workers=1, starting=1), WIDE, IDLE, 5),
        # current 4 above max 2 (config lowered), work 5 -> clamp to 2
        (observe(visible=5, workers=4), CONFIG, IDLE, 2),
        # work 0, busy 2 s ago < 5 s cooldown -> stays at current 2
        (observe(workers=2), CONFIG, BUSY_AT_98, 2),
        # work 0, busy 2 s ago, current 1 running + 1 starting = 2 -> stays 2
        (observe(workers=1, starting=1), CONFIG, BUSY_AT_98, 2),
        # work 0, busy 10 s ago, but this is the first look to find none -> keep 2
        (observe(workers=2), CONFIG, BUSY_AT_90, 2),
        # work 0, idle since 94: 100 - 94 = 6 >= 5 -> min_workers 0
        (observe(workers=2), CONFIG, IDLE_SINCE_94, 0),
        # work 0, idle since exactly 5 s: 100 - 95 = 5 >= 5 -> scale in
        (observe(workers=2), CONFIG, PolicyState(last_busy_s=95.0, idle_since_s=95.0), 0),
        # min_workers 1 at rest -> 1
        (observe(), FLOOR_1, IDLE, 1),
        # min_workers 1, current 0 within cooldown -> clamp up to 1
        (observe(), FLOOR_1, BUSY_AT_98, 1),
        # min_workers 1 after cooldown with 3 workers -> 1
        (observe(workers=3), FLOOR_1, IDLE_SINCE_94, 1),
        # work 100 -> needs 10, capped at max 4
        (observe(visible=100), FLOOR_1, IDLE, 4),
    ],
)
def test_desired(
    observation: Observation, config: ScalingConfig, state: PolicyState, expected: int
) -> None:
    decision = decide(observation, config, state)
    assert decision.desired == expected, decision.reason
    assert config.min_workers <= decision.desired <= config.max_workers
    assert decision.reason


def test_work_records_last_busy() -> None:
    decision = decide(observe(now_s=42.0, visible=3), CONFIG, BUSY_AT_90)
    assert decision.state == PolicyState(last_busy_s=42.0)
    assert "backlog 3" in decision.reason


def test_idle_keeps_last_busy_and_says_what_remains() -> None:
    first = decide(observe(now_s=100.0, workers=2), CONFIG, PolicyState(last_busy_s=98.5))
    assert first.state == PolicyState(last_busy_s=98.5, idle_since_s=100.0)
    assert first.desired == 2 and first.recheck_in_s == 5.0
    later = decide(observe(now_s=101.5, workers=2), CONFIG, first.state)
    assert later.desired == 2 and "3.5 s" in later.reason  # 5 - (101.5 - 100) = 3.5
    assert later.recheck_in_s == 3.5


def test_one_empty_look_in_the_middle_of_load_does_not_scale_in() -> None:
    """The soak test's failure: looks 1 s apart, cooldown 0.5 s, one look finds nothing
    between answers and the next uploads; the busy workers must stay."""
    quick = ScalingConfig(
        min_workers=0, max_workers=2, backlog_per_worker=10, scale_in_cooldown_s=0.5
    )
    busy = decide(observe(now_s=10.0, in_flight=30, workers=2), quick, IDLE)
    empty = decide(observe(now_s=11.0, workers=2), quick, busy.state)
    busy_again = decide(observe(now_s=12.0, in_flight=25, workers=2), quick, empty.state)
    assert (empty.desired, busy_again.desired) == (2, 2)
    assert empty.recheck_in_s == 0.5
    quiet = decide(observe(now_s=12.5, workers=2), quick, busy_again.state)
    quiet_still = decide(observe(now_s=13.0, workers=2), quick, quiet.state)
    assert (quiet.desired, quiet_still.desired) == (2, 0)


def test_uploads_between_two_empty_looks_keep_the_fleet() -> None:
    """A client sending one image at a time: most looks find its request in flight, some
    find nothing, but uploads keep arriving in between. Only looks with no work and no
    upload since the one before may scale in."""
    quick = ScalingConfig(
        min_workers=0, max_workers=2, backlog_per_worker=10, scale_in_cooldown_s=0.5
    )
    state = decide(observe(now_s=10.0, in_flight=1, workers=1), quick, IDLE).state
    for i in range(1, 21):  # 10 s of looks 0.5 s apart that all miss the request
        decision = decide(observe(now_s=10.0 + i / 2, workers=1, uploaded=12), quick, state)
        assert decision.desired == 1 and decision.reason.startswith("busy: 12 uploads")
        assert decision.state.last_busy_s == 10.0 + i / 2
        state = decision.state
    quiet = decide(observe(now_s=21.0, workers=1), quick, state)
    quiet_still = decide(observe(now_s=21.5, workers=1), quick, quiet.state)
    assert (quiet.desired, quiet_still.desired) == (1, 0)


def test_idle_scale_in_reason() -> None:
    assert decide(observe(workers=2), CONFIG, IDLE_SINCE_94).reason.startswith("idle: scale in")
    assert decide(observe(), CONFIG, IDLE).reason == "idle: at the floor"


def simulate(
    config: ScalingConfig,
    arrivals: dict[int, int],
    periods: int,
    per_worker_per_period: int = 8,
) -> tuple[list[Decision], list[int]]:
    """Run `decide` over 1 s control periods against a toy fleet.

    Arrivals at period t show up as `arriving`, then join the queue. A launched worker
    is `starting` for the rest of its period and running from the next one; each running
    worker then finishes `per_worker_per_period` requests per period. Scale-in stops
    starting workers first. Returns the decisions and the queue depth seen each period.
    """
    state = PolicyState()
    queued = workers = starting = 0
    decisions: list[Decision] = []
    depths: list[int] = []
    for t in range(periods):
        workers, starting = workers + starting, 0
        arriving = arrivals.get(t, 0)
        observation = Observation(
            now_s=float(t),
            visible=queued,
            in_flight=0,
            arriving=arriving,
            workers=workers,
            starting=starting,
        )
        decision = decide(observation, config, state)
        state = decision.state
        decisions.append(decision)
        depths.append(queued + arriving)
        if decision.desired > workers:
            starting = decision.desired - workers
        else:
            workers = decision.desired
        queued = max(0, queued + arriving - workers * per_worker_per_period)
    return decisions, depths


def compress(values: list[int]) -> list[int]:
    """[0, 0, 2, 2, 0] -> [0, 2, 0]."""
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def test_burst_scales_zero_to_cap_and_back_to_zero() -> None:
    # 100 requests at t=2; 2 workers x 8 per period = 16 per period -> ceil(100/16) = 7
    # periods of work (t=3..9), last seen busy at t=9, back to 0 at t=9+5 = 14.
    decisions, depths = simulate(CONFIG, arrivals={2: 100}, periods=25)
    desired = [d.desired for d in decisions]

    assert compress(desired) == [0, 2, 0]
    assert desired[:2] == [0, 0]  # rest at 0
    assert desired[2] == 2  # scale out at once, at the cap (ceil(100/10) = 10 > 2)
    assert max(desired) == CONFIG.max_workers
    assert desired[-1] == 0 and depths[-1] == 0  # all work done, fleet gone

    last_busy = max(t for t, depth in enumerate(depths) if depth > 0)
    assert last_busy == 2 + math.ceil(100 / 16)  # 9
    first_zero = desired.index(0, 2)
    # the first empty look is at 10; the cooldown runs from there: 10 + 5 = 15
    assert first_zero == last_busy + 1 + CONFIG.scale_in_cooldown_s


def test_trickle_during_cooldown_keeps_the_fleet() -> None:
    # 20 at t=1 -> 2 workers, running from t=2: 16 done at t=2, 4 at t=3; quiet t=4..5;
    # 1 more at t=6 (done the same period) restarts the cooldown: the next look (7) finds
    # nothing, scale-in at 7+5 = 12.
    decisions, depths = simulate(CONFIG, arrivals={1: 20, 6: 1}, periods=20)
    desired = [d.desired for d in decisions]

    assert compress(desired) == [0, 2, 0]  # no flapping between the two bursts
    last_busy = max(t for t, depth in enumerate(depths) if depth > 0)
    assert last_busy == 6
    assert desired.index(0, 1) == last_busy + 1 + CONFIG.scale_in_cooldown_s  # 12


def test_never_above_cap_under_sustained_load() -> None:
    # 30 new requests every period for 20 periods vs. 2 x 8 = 16 served: the queue grows,
    # ceil(backlog/10) grows far past 2, yet desired stays at max 2.
    decisions, _ = simulate(CONFIG, arrivals={t: 30 for t in range(20)}, periods=20)
    assert all(d.desired <= CONFIG.max_workers for d in decisions)
    assert decisions[-1].desired == CONFIG.max_workers


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        (dict(min_workers=-1), "min_workers"),
        (dict(max_workers=0), "max_workers"),  # must be >= 1
        (dict(min_workers=3, max_workers=2), "max_workers"),  # must be >= min_workers
        (dict(backlog_per_worker=0), "backlog_per_worker"),
        (dict(scale_in_cooldown_s=-0.5), "scale_in_cooldown_s"),
        (dict(scale_in_cooldown_s=math.nan), "scale_in_cooldown_s"),
    ],
)
def test_bad_config_raises(fields: dict[str, Any], field_name: str) -> None:
    good: dict[str, Any] = dict(
        min_workers=0, max_workers=2, backlog_per_worker=10, scale_in_cooldown_s=5.0
    )
    with pytest.raises(ValueError, match=rf"^{field_name} must be .*, got "):
        ScalingConfig(**{**good, **fields})
