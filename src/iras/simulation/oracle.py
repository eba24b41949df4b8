"""The oracle: a fleet schedule made knowing every arrival, the yardstick for the others.

Made in three steps, each in the engine itself, so that it batches and bills as every
other policy does:

1. `plan`: who does which batch. Images wait while the first busy worker to free up
   can still end their batch in time (its free time and the batch it will take are
   known, the arrivals being known); when the oldest waiting image could not, a worker
   is added at once, ready at that moment (so launched one boot earlier). Ready at the
   image's arrival, not at the last moment its deadline allows: a worker made to wait
   for the deadline then faces the whole backlog at once and needs company (measured:
   the course's 100 images took 8 workers that way, one this way). A worker that finds
   nothing waiting after a batch leaves the plan; the next one added takes the lowest
   free *rank*. So work is packed onto few ranks. With `max_workers` busy, images wait.
2. `schedule`: each rank's busy spans cut into instance lives, the cheapest way under
   per-second billing with a minimum: an idle gap is bridged (the instance kept) unless
   ending the instance and launching another one boot before the next span costs less,
   counting the new boot and the billing minimum of every life. Exact, by dynamic
   programming (`cheapest_lives`).
3. `replay`: the trace run again on exactly those launches and releases. The figures
   reported, latencies included, are the replay's: the engine's dispatch on that fleet.
   A bridged instance takes work that the plan had wait, so most images are answered
   sooner than planned; batches then form differently, and a few images end a fraction
   of a second later (tests/simulation/test_oracle.py checks that every image is
   answered, and within the target plus one batch). A release that finds its instance
   busy with such work lets it finish its batch, which may bill a fraction of a second
   more than the schedule.

A yardstick, not a proven optimum: workers are added greedily, one deadline at a time.
But no schedule can bill less than the work itself, images / rate, and `oracle` checks
that its instance-seconds are at least that on every run.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from iras.simulation.engine import Simulation
from iras.simulation.types import BatchDone, Fleet, Happening, Run, State


@dataclass(frozen=True, slots=True)
class Life:
    """One instance of the schedule: a planned worker (`rank`) from launch to release."""

    rank: int
    launched_s: float
    ready_s: float
    released_s: float


class Planner:
    """The engine's driver for step 1 (module docstring)."""

    def __init__(self, latency_target_s: float) -> None:
        self._target_s = latency_target_s
        self._ranks: dict[int, int] = {}  # live worker number -> its rank
        self._checked_head = -1

    def start(self, sim: Simulation) -> None:
        return None

    def notice(self, sim: Simulation, happening: Happening) -> None:
        if isinstance(happening, BatchDone) and sim.worker(happening.number).state is State.IDLE:
            sim.release(happening.number)  # nothing waits for it: it leaves the plan
            del self._ranks[happening.number]
        # The answer for one oldest image holds until a batch starts (the head moves):
        # the free times of busy workers are fixed and the arrivals are known.
        if not sim.waiting or sim.idle or sim.head == self._checked_head:
            return
        self._checked_head = head = sim.head
        fleet = sim.fleet
        arrived_s = sim.arrivals[head]
        free_s = sim.next_free_s()
        if free_s < math.inf:
            taken = min(fleet.batch_size, bisect_right(sim.arrivals, free_s) - head)
            if free_s + taken / fleet.worker_rate_ips - arrived_s <= self._target_s:
                return
        self._add(sim)

    def _add(self, sim: Simulation) -> None:
        if len(self._ranks) >= sim.fleet.max_workers:
            return
        taken = set(self._ranks.values())
        rank = next(r for r in range(len(taken) + 1) if r not in taken)
        number = sim.launch(launched_s=sim.now_s - sim.fleet.boot_s, ready_s=sim.now_s, rank=rank)
        self._ranks[number] = rank


class Replay:
    """The engine's driver for step 3: launch and release each life at its times."""

    def __init__(self, lives: Sequence[Life]) -> None:
        self._lives = lives

    def start(self, sim: Simulation) -> None:
        for life in self._lives:
            sim.call_at(life.launched_s, self._launcher(sim, life))

    def notice(self, sim: Simulation, happening: Happening) -> None:
        return None

    @staticmethod
    def _launcher(sim: Simulation, life: Life) -> Callable[[], None]:
        def launch() -> None:
            number = sim.launch(ready_s=life.ready_s, rank=life.rank)
            sim.call_at(life.released_s, lambda: sim.release(number))

        return launch


def plan(arrivals: Sequence[float], fleet: Fleet, latency_target_s: float) -> Run:
    """Step 1: the plan's run: its workers, their ranks and busy spans."""
    return Simulation(arrivals, fleet, Planner(latency_target_s)).run()


def cheapest_lives(
    spans: Sequence[tuple[float, float]], boot_s: float, minimum_s: float
) -> list[tuple[int, int]]:
    """The cheapest cut of one worker's busy `spans` into instance lives, as (first,
    last) span indices: a life covering spans i..j is launched one boot before span i
    starts and stops when span j ends, billed max(minimum, end_j - start_i + boot).

    cost[k], the cheapest billing of the first k spans, never falls as k grows, so for
    the spans ending at j: a life too short to pass the minimum is cheapest starting at
    the earliest such span (it bills the minimum alone), and one past it is linear in
    its start, so a running minimum of cost[i] - start_i serves them all. O(spans).
    """
    count = len(spans)
    cost = [0.0] * (count + 1)  # cost[k]: the first k spans
    start_of_last = [0] * (count + 1)
    best_linear, best_linear_at, long_from = math.inf, -1, 0
    for j in range(count):
        end_s = spans[j][1]
        # Lives starting at span i < long_from are at least the minimum long.
        while long_from <= j and end_s - spans[long_from][0] + boot_s >= minimum_s:
            value = cost[long_from] - spans[long_from][0]
            if value < best_linear:
                best_linear, best_linear_at = value, long_from
            long_from += 1
        best, best_at = math.inf, -1
        if best_linear_at >= 0:
            best, best_at = best_linear + end_s + boot_s, best_linear_at
        if long_from <= j and cost[long_from] + minimum_s < best:
            best, best_at = cost[long_from] + minimum_s, long_from
        cost[j + 1], start_of_last[j + 1] = best, best_at
    lives: list[tuple[int, int]] = []
    k = count
    while k > 0:
        first = start_of_last[k]
        lives.append((first, k - 1))
        k = first
    return lives[::-1]


def schedule(planned: Run) -> list[Life]:
    """Step 2: every rank's busy spans (over the plan's workers of that rank) cut into
    their cheapest lives."""
    fleet = planned.fleet
    spans_by_rank: dict[int, list[tuple[float, float]]] = {}
    for worker in planned.workers:  # in launch order: a rank's spans come in time order
        spans_by_rank.setdefault(worker.rank, []).extend(worker.busy)
    lives: list[Life] = []
    for rank, spans in spans_by_rank.items():
        for first, last in cheapest_lives(spans, fleet.boot_s, fleet.billing_minimum_s):
            start_s = spans[first][0]
            lives.append(Life(rank, start_s - fleet.boot_s, start_s, spans[last][1]))
    return sorted(lives, key=lambda life: (life.launched_s, life.rank))


def replay(arrivals: Sequence[float], fleet: Fleet, lives: Sequence[Life]) -> Run:
    """Step 3: the schedule run through the engine."""
    return Simulation(arrivals, fleet, Replay(lives)).run()


def oracle(arrivals: Sequence[float], fleet: Fleet, latency_target_s: float) -> Run:
    """The oracle's run: planned, cut into lives, replayed; never billing under the work."""
    run = replay(arrivals, fleet, schedule(plan(arrivals, fleet, latency_target_s)))
    if run.instance_seconds < run.busy_seconds:
        raise AssertionError(
            f"the oracle billed {run.instance_seconds} instance-seconds, less than the "
            f"{run.busy_seconds} busy seconds of the work: the schedule is impossible"
        )
    return run
