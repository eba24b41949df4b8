"""The discrete-event loop: uploads arrive, a fleet boots, workers batch, instances bill.

What it models, and why so:

- Uploads join one FIFO queue at their trace time (the gateway queues at once).
- A launched instance takes `boot_s` to take work, then is *ready*. A ready worker that
  is idle takes up to `batch_size` waiting images at once as one batch, which takes
  size / rate seconds; every image of it ends with the batch (latency = batch end -
  arrival). That is the worker's own rule: an idle model takes what there is at once,
  a busy one lets the next batch fill meanwhile (`IRAS_BATCH_SIZE`, default 8).
- Several idle workers: the one of lowest *rank* takes work first (a launch's rank is
  its number, unless the driver gives one). SQS hands messages to whichever worker
  polls; a fixed order keeps runs deterministic and lets the oracle pack work.
- A released instance stops at once if booting or idle; a busy one finishes its batch
  and stops then (the worker's graceful shutdown), billed until then. Every instance is
  billed from launch with the minimum, by `iras.scaler.billing`.
- Events at the same instant: batch ends, then readiness, then arrivals, then the
  driver's calls (its looks), so a look sees what happened at its instant.

The loop is steered by a `Driver` (looks of a policy, the oracle's planner, a fixed
schedule): it starts the driver, tells it of each arrival, readiness and finished batch,
and runs the calls it schedules. It ends when every image is answered and no instance
is left, or `horizon_s` after the last arrival (instances still up are billed until
then; unanswered images count with an infinite latency).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence

from iras.scaler.policy import Member, pick_released
from iras.simulation.types import (
    ARRIVED,
    BatchDone,
    Driver,
    Fleet,
    Happening,
    Ready,
    Run,
    State,
    View,
    Worker,
)

__all__ = ["HORIZON_S", "Simulation"]

#: How long after the last arrival a run may go on (a policy that never answers).
HORIZON_S = 2 * 3600.0
BATCH_END, READY, ARRIVAL, CALL = range(4)  # event kinds, in their order at one instant


class Simulation:
    """One run of `arrivals` through `fleet`, steered by `driver`."""

    def __init__(
        self, arrivals: Sequence[float], fleet: Fleet, driver: Driver, horizon_s: float = HORIZON_S
    ) -> None:
        self.fleet = fleet
        self.arrivals = arrivals
        self.now_s = -math.inf  # before the first event (a schedule may launch before 0)
        self._driver = driver
        self._horizon_s = (arrivals[-1] if arrivals else 0.0) + horizon_s
        self._heap: list[tuple[float, int, int, int | Callable[[], None]]] = []
        self._seq = 0
        self.arrived = 0  # arrivals so far
        self.head = 0  # the oldest waiting image (images before it are taken)
        self.in_flight = 0
        self.ready = 0
        self.booting = 0
        self._workers: list[Worker] = []
        self._live: dict[int, Worker] = {}  # launched, not released, in launch order
        self._idle: list[tuple[int, int]] = []  # (rank, number); stale entries skipped
        self.idle = 0
        self._latencies = [math.inf] * len(arrivals)
        self._scale_events = 0
        self._acted_s: float | None = None
        self._peak = 0
        self._timeline: list[tuple[float, int, int]] = []

    @property
    def waiting(self) -> int:
        return self.arrived - self.head

    def view(self, uploaded: int) -> View:
        ages = tuple(self.now_s - w.launched_s for w in self._live.values())
        return View(
            self.now_s, self.waiting, self.in_flight, self.ready, self.booting, uploaded, ages
        )

    def call_at(self, t: float, call: Callable[[], None]) -> None:
        """Run `call` at time `t` (not before now)."""
        self._push(max(t, self.now_s), CALL, call)

    def launch(
        self,
        *,
        launched_s: float | None = None,
        ready_s: float | None = None,
        rank: int | None = None,
    ) -> int:
        """Launch an instance (by default now, ready one boot later); returns its number."""
        launched = self.now_s if launched_s is None else launched_s
        ready = launched + self.fleet.boot_s if ready_s is None else ready_s
        if ready < self.now_s:
            raise ValueError(f"an instance cannot be ready at {ready}, before now ({self.now_s})")
        number = len(self._workers)
        worker = Worker(number, number if rank is None else rank, launched, ready)
        self._workers.append(worker)
        self._live[number] = worker
        self.booting += 1
        self._push(ready, READY, number)
        self._acted()
        return number

    def release(self, number: int) -> None:
        """Stop an instance: now if booting or idle, at its batch's end if busy."""
        worker = self._live.pop(number)
        if worker.state is State.BOOTING:
            self.booting -= 1
            self._stop(worker)
        elif worker.state is State.IDLE:
            self.ready -= 1
            self.idle -= 1
            self._stop(worker)
        else:
            self.ready -= 1
            worker.draining = True
        self._acted()

    def resize(self, desired: int) -> None:
        """Launch or release to `desired` live instances; victims by `pick_released`."""
        live = len(self._live)
        if desired > live:
            for _ in range(desired - live):
                self.launch()
        elif desired < live:
            members = [
                Member(str(w.number), w.state is State.BOOTING, self.now_s - w.launched_s)
                for w in self._live.values()
            ]
            for key in pick_released(members, live - desired, self.fleet.billing_minimum_s):
                self.release(int(key))

    def worker(self, number: int) -> Worker:
        return self._workers[number]

    def next_free_s(self) -> float:
        """When the first busy live worker ends its batch (inf: none is busy)."""
        ends = [w.busy[-1][1] for w in self._live.values() if w.state is State.BUSY]
        return min(ends, default=math.inf)

    def run(self) -> Run:
        self._driver.start(self)
        arrivals, heap, count = self.arrivals, self._heap, len(self.arrivals)
        while True:
            next_arrival_s = arrivals[self.arrived] if self.arrived < count else math.inf
            if heap and (heap[0][0], heap[0][1]) < (next_arrival_s, ARRIVAL):
                t, kind, _, payload = heapq.heappop(heap)
            elif self.arrived < count:
                t, kind, payload = next_arrival_s, ARRIVAL, 0
            else:
                break
            if t > self._horizon_s:
                self.now_s = self._horizon_s
                break
            self.now_s = t
            happening: Happening | None = None
            if kind == ARRIVAL:
                self.arrived += 1
                happening = ARRIVED
            elif kind == BATCH_END:
                assert isinstance(payload, int)
                happening = self._end_batch(self._workers[payload])
            elif kind == READY:
                assert isinstance(payload, int)
                happening = self._ready(self._workers[payload])
            else:
                assert callable(payload)
                payload()
            self._dispatch()
            if happening is not None:
                self._driver.notice(self, happening)
            if (
                self.arrived == count
                and self.head == count
                and not self.in_flight
                and not self._live
            ):
                break
        return self._finish()

    def _push(self, t: float, kind: int, payload: int | Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, kind, self._seq, payload))

    def _dispatch(self) -> None:
        while self.head < self.arrived and self.idle:
            _, number = heapq.heappop(self._idle)
            worker = self._workers[number]
            if worker.state is State.IDLE and not worker.draining:
                self._start_batch(worker)

    def _start_batch(self, worker: Worker) -> None:
        size = min(self.fleet.batch_size, self.arrived - self.head)
        worker.first, worker.last = self.head, self.head + size
        self.head += size
        self.in_flight += size
        self.idle -= 1
        worker.state = State.BUSY
        end_s = self.now_s + size / self.fleet.worker_rate_ips
        if worker.busy and worker.busy[-1][1] == self.now_s:
            worker.busy[-1] = (worker.busy[-1][0], end_s)
        else:
            worker.busy.append((self.now_s, end_s))
        self._push(end_s, BATCH_END, worker.number)

    def _end_batch(self, worker: Worker) -> BatchDone:
        arrivals, latencies, now_s = self.arrivals, self._latencies, self.now_s
        for index in range(worker.first, worker.last):
            latencies[index] = now_s - arrivals[index]
        size = worker.last - worker.first
        self.in_flight -= size
        if worker.draining:
            self._stop(worker)
        else:
            worker.state = State.IDLE
            self.idle += 1
            heapq.heappush(self._idle, (worker.rank, worker.number))
        return BatchDone(worker.number, worker.key, size, size / self.fleet.worker_rate_ips)

    def _ready(self, worker: Worker) -> Ready | None:
        if worker.state is not State.BOOTING:
            return None  # released while booting
        worker.state = State.IDLE
        self.booting -= 1
        self.ready += 1
        self.idle += 1
        heapq.heappush(self._idle, (worker.rank, worker.number))
        self._record()
        return Ready(worker.number, worker.key, self.now_s - worker.launched_s)

    def _stop(self, worker: Worker) -> None:
        worker.state = State.STOPPED
        worker.stopped_s = self.now_s
        self._record()

    def _acted(self) -> None:
        """Count the instants at which the driver changed the fleet (scale events)."""
        if self._acted_s != self.now_s:
            self._acted_s = self.now_s
            self._scale_events += 1
        self._record()

    def _record(self) -> None:
        self._peak = max(self._peak, self.ready + self.booting)
        point = (self.now_s, self.ready, self.booting)
        if self._timeline and self._timeline[-1][0] == self.now_s:
            self._timeline[-1] = point
        else:
            self._timeline.append(point)

    def _finish(self) -> Run:
        for worker in self._workers:
            if worker.state is not State.STOPPED:
                worker.state = State.STOPPED
                worker.stopped_s = self.now_s
        self._live.clear()
        self.ready = self.booting = 0
        self._record()
        return Run(
            fleet=self.fleet,
            arrivals=self.arrivals,
            latencies_s=self._latencies,
            workers=self._workers,
            scale_events=self._scale_events,
            peak_workers=self._peak,
            timeline=self._timeline,
            end_s=self.now_s,
        )
