"""Policies that look at the queue and the fleet now and then, and the driver of their looks.

A `Policy` answers a look (a `View` of the queue and the fleet) with the fleet it wants
and when to look again. `LookDriver` is the engine's driver for one, doing what the
gateway's controller (`iras.scaler.controller.Scaler`) does around `decide`:

- it looks first at the whole second of the first arrival (0 for the generated traces;
  a trace of epoch times does not cost years of empty looks), then when the policy says
  (`Look.next_look_in_s`; a look asked "at once" comes `MIN_LOOK_GAP_S` later, the time
  a controller step takes);
- it resizes the fleet to the answer, clamped to [0, max_workers], releasing the
  instances `iras.scaler.policy.pick_released` picks;
- it passes the policy the samples the controller feeds its capacity model: one boot
  time per instance that becomes ready, one rate per finished batch;
- it offers the first arrival after each look to the policy's `nudge`, the gateway's
  wake-up on an upload (`Scaler.nudge`): a policy that says yes looks at once. The
  gateway asks on every upload, but the question is the last look's figures plus one
  upload, the same for every upload until the next look but for the clock; asking it
  once per look gives the same wake-ups (up to that clock) at a fraction of the cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from iras.simulation.engine import Simulation
from iras.simulation.types import Arrived, BatchDone, Happening, Ready, View

#: Shortest gap between two looks, in seconds: one controller step (two AWS calls).
MIN_LOOK_GAP_S = 0.01


@dataclass(frozen=True, slots=True)
class Look:
    """A policy's answer: the fleet it wants, and when to look again."""

    desired: int
    next_look_in_s: float


class Policy(Protocol):
    """A look-based scaling policy."""

    @property
    def name(self) -> str: ...

    def look(self, view: View) -> Look:
        """The fleet wanted now (the view is the queue and the fleet before acting)."""
        ...

    def nudge(self, last: View, now_s: float) -> bool:
        """An upload arrived at `now_s`; `last` is the fleet after the last look: look now?"""
        ...

    def booted(self, boot_s: float) -> None:
        """An instance became ready `boot_s` after its launch."""
        ...

    def batch_done(self, worker: str, images: int, busy_s: float) -> None:
        """`worker` finished a batch of `images` in `busy_s`."""
        ...


class Periodic:
    """The parts of `Policy` a policy that only looks on its own period leaves empty."""

    def nudge(self, last: View, now_s: float) -> bool:
        return False

    def booted(self, boot_s: float) -> None:
        return None

    def batch_done(self, worker: str, images: int, busy_s: float) -> None:
        return None


class LookDriver:
    """Runs `policy`'s looks on a simulation (see the module docstring)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.looks = 0
        self._sim: Simulation | None = None
        self._token = 0  # the scheduled look that counts; a nudge supersedes it
        self._arrived_before = 0
        self._last: View | None = None
        self._nudge_offered = False

    def start(self, sim: Simulation) -> None:
        self._sim = sim
        self._schedule(sim, math.floor(sim.arrivals[0]) if sim.arrivals else 0.0)

    def notice(self, sim: Simulation, happening: Happening) -> None:
        if isinstance(happening, Arrived):
            if self._last is not None and not self._nudge_offered:
                self._nudge_offered = True
                if self.policy.nudge(self._last, sim.now_s):
                    self._schedule(sim, sim.now_s)
        elif isinstance(happening, Ready):
            self.policy.booted(happening.boot_s)
        elif isinstance(happening, BatchDone):
            self.policy.batch_done(happening.worker, happening.images, happening.busy_s)

    def _schedule(self, sim: Simulation, t: float) -> None:
        self._token += 1
        token = self._token
        sim.call_at(t, lambda: self._look(token))

    def _look(self, token: int) -> None:
        sim = self._sim
        assert sim is not None, "started before any look"
        if token != self._token:
            return  # a nudge looked since this was scheduled, and restarted the period
        self.looks += 1
        view = sim.view(uploaded=sim.arrived - self._arrived_before)
        self._arrived_before = sim.arrived
        look = self.policy.look(view)
        sim.resize(max(0, min(sim.fleet.max_workers, look.desired)))
        self._last = sim.view(uploaded=view.uploaded)  # the queue as seen, the fleet as made
        self._nudge_offered = False
        self._schedule(sim, sim.now_s + max(MIN_LOOK_GAP_S, look.next_look_in_s))
