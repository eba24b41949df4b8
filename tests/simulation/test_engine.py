"""The event loop on tiny cases whose figures can be worked out by hand.

Rate 15 images/s, so one image takes 1/15 s and a batch of 8 takes 8/15 s; boot 40 s;
billing minimum 60 s. Fixed schedules are the oracle's `Replay` of hand-made lives.
"""

from __future__ import annotations

import pytest

from iras.simulation.engine import Simulation
from iras.simulation.looks import Look, LookDriver, Periodic
from iras.simulation.oracle import Life, Replay
from iras.simulation.types import Fleet, Run, View

FLEET = Fleet(boot_s=40.0, worker_rate_ips=15.0, max_workers=4)


def scheduled(arrivals: list[float], *lives: Life, fleet: Fleet = FLEET) -> Run:
    return Simulation(arrivals, fleet, Replay(lives)).run()


class OneWhileWork(Periodic):
    """One worker while anything waits or is in flight, none otherwise; looks every 1 s."""

    name = "one-while-work"

    def __init__(self) -> None:
        self.views: list[View] = []

    def look(self, view: View) -> Look:
        self.views.append(view)
        return Look(1 if view.waiting + view.in_flight else 0, 1.0)


def test_one_image_on_a_worker_already_up_takes_one_service_time() -> None:
    # Launched at -40, ready at 0; the image comes at 5: 5 -> 5 + 1/15.
    run = scheduled([5.0], Life(0, -40.0, 0.0, 100.0))
    assert run.latencies_s == [pytest.approx(1 / 15)]
    assert run.instance_seconds == pytest.approx(140.0)  # -40 .. 100
    assert run.busy_seconds == pytest.approx(1 / 15)


def test_a_launch_from_empty_costs_the_boot() -> None:
    policy = OneWhileWork()
    run = Simulation([0.0], FLEET, LookDriver(policy)).run()
    # The look at 0 sees the image that arrived at 0, launches; ready at 40, done 1/15 later.
    assert policy.views[0].waiting == 1 and policy.views[0].uploaded == 1
    assert run.latencies_s == [pytest.approx(40 + 1 / 15)]
    # The look at 41 finds nothing and releases it: launched 0, stopped 41 -> billed 60.
    assert run.instance_seconds == pytest.approx(60.0)
    assert (run.peak_workers, run.scale_events, len(run.workers)) == (1, 2, 1)


def test_the_billing_minimum_applies_to_a_short_life() -> None:
    short = scheduled([1.0], Life(0, 0.0, 0.0, 10.0))  # up 10 s -> billed 60
    assert short.instance_seconds == pytest.approx(60.0)
    long = scheduled([1.0], Life(0, 0.0, 0.0, 80.0))  # up 80 s -> billed 80
    assert long.instance_seconds == pytest.approx(80.0)


def test_eight_waiting_images_go_as_one_batch_and_end_together() -> None:
    # 8 images wait from 0; the worker is ready at 1: one batch 1 .. 1 + 8/15.
    run = scheduled([0.0] * 8, Life(0, -39.0, 1.0, 100.0))
    assert run.latencies_s == [pytest.approx(1 + 8 / 15)] * 8
    [(start_s, end_s)] = run.workers[0].busy
    assert start_s == 1.0 and end_s == pytest.approx(1 + 8 / 15)


def test_a_ninth_image_waits_for_the_next_batch() -> None:
    run = scheduled([0.0] * 9, Life(0, -39.0, 1.0, 100.0))
    assert run.latencies_s[:8] == [pytest.approx(1 + 8 / 15)] * 8
    assert run.latencies_s[8] == pytest.approx(1 + 9 / 15)  # then a batch of 1


def test_an_idle_worker_takes_an_arrival_at_once_and_a_busy_one_lets_the_next_batch_fill() -> None:
    # 0.0 finds the worker idle: a batch of 1, 0 .. 1/15. 0.01, 0.02 arrive meanwhile and
    # go together at 1/15, ending at 3/15.
    run = scheduled([0.0, 0.01, 0.02], Life(0, -40.0, 0.0, 100.0))
    assert run.latencies_s == [
        pytest.approx(1 / 15),
        pytest.approx(3 / 15 - 0.01),
        pytest.approx(3 / 15 - 0.02),
    ]


def test_the_lowest_rank_idle_worker_takes_work_first() -> None:
    run = scheduled([5.0], Life(1, -40.0, 0.0, 100.0), Life(0, -40.0, 0.0, 100.0))
    by_rank = {w.rank: w.busy for w in run.workers}
    assert by_rank[1] == []
    [(start_s, end_s)] = by_rank[0]
    assert start_s == 5.0 and end_s == pytest.approx(5 + 1 / 15)


def test_a_busy_worker_released_finishes_its_batch_and_is_billed_until_then() -> None:
    # 8 images from 0 on a worker ready at 100 (launched 40): batch 100 .. 100 + 8/15.
    # Released at 100.2, mid-batch: it stops at the batch's end, billed from 40.
    run = scheduled([0.0] * 8, Life(0, 40.0, 100.0, 100.2))
    assert run.latencies_s == [pytest.approx(100 + 8 / 15)] * 8
    assert run.workers[0].stopped_s == pytest.approx(100 + 8 / 15)
    assert run.instance_seconds == pytest.approx(60 + 8 / 15)


def test_a_worker_released_while_booting_stops_at_once_billed_the_minimum() -> None:
    # Launched at 0 for readiness at 40 but released at 5; another one serves the image.
    run = scheduled([1.0], Life(0, 0.0, 40.0, 5.0), Life(1, -40.0, 0.0, 30.0))
    assert [w.stopped_s for w in run.workers] == [30.0, 5.0]  # launch order: -40, then 0
    assert run.instance_seconds == pytest.approx(70.0 + 60.0)
    assert run.latencies_s == [pytest.approx(1 / 15)]


class Never(Periodic):
    name = "never"

    def look(self, view: View) -> Look:
        return Look(0, 1.0)


def test_images_never_served_count_as_infinitely_late_and_the_run_ends_at_the_horizon() -> None:
    run = Simulation([0.0, 1.0], FLEET, LookDriver(Never()), horizon_s=10.0).run()
    assert run.latencies_s == [float("inf")] * 2
    assert run.end_s == 11.0 and run.instance_seconds == 0.0  # 10 s after the last arrival


def test_the_same_run_twice_gives_the_same_figures() -> None:
    arrivals = [0.1 * i for i in range(200)]
    first = Simulation(arrivals, FLEET, LookDriver(OneWhileWork())).run()
    second = Simulation(arrivals, FLEET, LookDriver(OneWhileWork())).run()
    assert first.latencies_s == second.latencies_s
    assert first.timeline == second.timeline


@pytest.mark.parametrize(
    "fields",
    [
        {"boot_s": -1.0},
        {"worker_rate_ips": 0.0},
        {"max_workers": 0},
        {"batch_size": 0},
        {"boot_s": float("nan")},
    ],
)
def test_a_fleet_refuses_impossible_figures(fields: dict[str, float]) -> None:
    values: dict[str, float] = {"boot_s": 40.0, "worker_rate_ips": 15.0, "max_workers": 4}
    with pytest.raises(ValueError, match="must be"):
        Fleet(**{**values, **fields})  # type: ignore[arg-type]


def test_looks_start_at_the_second_of_the_first_arrival() -> None:
    policy = OneWhileWork()
    run = Simulation([1.7e9 + 0.25], FLEET, LookDriver(policy)).run()  # epoch times
    assert policy.views[0].now_s == 1.7e9 and len(policy.views) < 50
    assert run.latencies_s == [pytest.approx(0.75 + 40 + 1 / 15)]  # launched at the look at +1
