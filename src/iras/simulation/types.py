"""The simulation's vocabulary: the fleet's figures, an instance, a view, a run.

Shared by the event loop (`engine`), the policies that look at it (`looks` and the
reference policies) and the drivers that steer it (`oracle`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from iras.scaler.billing import EC2_BILLING_MINIMUM_S, billed_s

if TYPE_CHECKING:
    from iras.simulation.engine import Simulation


@dataclass(frozen=True, slots=True)
class Fleet:
    """What the simulated workers are: boot time, speed, batch, bounds and billing."""

    boot_s: float
    worker_rate_ips: float
    max_workers: int
    batch_size: int = 8
    billing_minimum_s: float = EC2_BILLING_MINIMUM_S

    def __post_init__(self) -> None:
        if not (math.isfinite(self.boot_s) and self.boot_s >= 0):
            raise ValueError(f"boot_s must be a finite number >= 0, got {self.boot_s}")
        if not (math.isfinite(self.worker_rate_ips) and self.worker_rate_ips > 0):
            raise ValueError(f"worker_rate_ips must be > 0, got {self.worker_rate_ips}")
        if self.max_workers < 1 or self.batch_size < 1:
            raise ValueError(
                f"max_workers and batch_size must be >= 1, got {self.max_workers}, "
                f"{self.batch_size}"
            )


class State(Enum):
    BOOTING = "booting"
    IDLE = "idle"
    BUSY = "busy"
    STOPPED = "stopped"


@dataclass(slots=True)
class Worker:
    """One instance, from launch to stop."""

    number: int
    rank: int
    launched_s: float
    ready_s: float
    state: State = State.BOOTING
    draining: bool = False  # released while busy: stops when its batch ends
    stopped_s: float | None = None
    first: int = 0  # the images of its batch: indices first..last-1
    last: int = 0
    busy: list[tuple[float, float]] = field(default_factory=list)  # merged busy spans

    @property
    def key(self) -> str:
        return f"w{self.number}"


@dataclass(frozen=True, slots=True)
class View:
    """The queue and the fleet at one instant, as a policy looks at them."""

    now_s: float
    waiting: int  # arrived, not taken by a worker
    in_flight: int  # in batches being processed
    ready: int  # live workers taking work
    booting: int  # launched, not ready yet
    uploaded: int  # arrivals since the driver's previous look
    ages_s: tuple[float, ...]  # seconds since launch of each live instance


@dataclass(frozen=True, slots=True)
class Arrived:
    """An upload joined the queue."""


@dataclass(frozen=True, slots=True)
class Ready:
    number: int
    worker: str
    boot_s: float


@dataclass(frozen=True, slots=True)
class BatchDone:
    number: int
    worker: str
    images: int
    busy_s: float


ARRIVED = Arrived()
Happening = Arrived | Ready | BatchDone


class Driver(Protocol):
    """What steers a run: it may launch, release and schedule calls on the simulation."""

    def start(self, sim: Simulation) -> None: ...

    def notice(self, sim: Simulation, happening: Happening) -> None: ...


@dataclass(frozen=True, slots=True)
class Run:
    """What one run did."""

    fleet: Fleet
    arrivals: Sequence[float]
    latencies_s: list[float]  # by image, in arrival order; inf: never answered
    workers: list[Worker]
    scale_events: int  # instants at which the driver changed the fleet
    peak_workers: int
    timeline: list[tuple[float, int, int]]  # (t, ready, booting) at each change
    end_s: float

    @property
    def instance_seconds(self) -> float:
        minimum = self.fleet.billing_minimum_s
        return sum(billed_s(_stopped_s(w) - w.launched_s, minimum) for w in self.workers)

    @property
    def busy_seconds(self) -> float:
        """Images / rate: the work itself, which no schedule bills less than."""
        return len(self.arrivals) / self.fleet.worker_rate_ips


def _stopped_s(worker: Worker) -> float:
    assert worker.stopped_s is not None, "a run stops every instance by its end"
    return worker.stopped_s
