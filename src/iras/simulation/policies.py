"""IRAS's own policies in the simulator: `iras.scaler.policy.decide` itself, not a copy.

`DecidePolicy` turns a look into the `Observation` the gateway's controller builds:
visible = images waiting, in_flight = images in batches, arriving = 0 (the simulated
gateway queues an upload the instant it comes), workers = ready, starting = booting,
uploaded = arrivals since the previous look, ages_s = seconds since launch of each live
instance, and the worker rate and boot time from a `CapacityModel` fed with the
simulated fleet's samples, as the controller feeds its own. It keeps the `PolicyState`
that `decide` returns between looks, looks every `scaler_interval_s` and sooner when a
decision asks (`Decision.next_look_in_s`), and answers nudges as the controller does,
with `policy.would_scale_out` on the last look's queue and fleet (after acting) plus the
one upload arriving, the capacity figures and the ages of the last look, at the
simulated time.

Two of them are compared: `iras`, with the latency objective (`latency_target_s` set),
and `backlog`, today's rule (no target, 10 requests per worker, 0.5 s cooldown). The
other bounds and periods are the gateway's defaults, read from `Settings`.
"""

from __future__ import annotations

from iras.config.settings import Settings
from iras.scaler.capacity import CapacityModel
from iras.scaler.policy import (
    Observation,
    PolicyState,
    ScalingConfig,
    decide,
    would_scale_out,
)
from iras.simulation.looks import Look
from iras.simulation.types import Fleet, View

_DEFAULTS = Settings.model_fields
#: The gateway's defaults (`IRAS_BACKLOG_PER_WORKER`, ...), which the simulator keeps.
BACKLOG_PER_WORKER: int = _DEFAULTS["backlog_per_worker"].default
SCALE_IN_COOLDOWN_S: float = _DEFAULTS["scale_in_cooldown_s"].default
SCALER_INTERVAL_S: float = _DEFAULTS["scaler_interval_s"].default


class DecidePolicy:
    """`decide` with `config`, looking as the controller does (module docstring)."""

    def __init__(
        self, name: str, config: ScalingConfig, fleet: Fleet, interval_s: float = SCALER_INTERVAL_S
    ) -> None:
        self.name = name
        self.config = config
        self._interval_s = interval_s
        self._state = PolicyState()
        self.last_observation: Observation | None = None  # what the last look showed decide
        # The guesses are the simulated fleet's true figures: the first samples confirm them.
        self._capacity = CapacityModel(fleet.worker_rate_ips, fleet.boot_s)

    def look(self, view: View) -> Look:
        observation = Observation(
            now_s=view.now_s,
            visible=view.waiting,
            in_flight=view.in_flight,
            arriving=0,
            workers=view.ready,
            starting=view.booting,
            uploaded=view.uploaded,
            worker_rate_ips=self._capacity.rate.value,
            boot_s=self._capacity.boot.value,
            ages_s=view.ages_s,
        )
        decision = decide(observation, self.config, self._state)
        self._state = decision.state
        self.last_observation = observation
        return Look(decision.desired, decision.next_look_in_s(self._interval_s))

    def nudge(self, last: View, now_s: float) -> bool:
        guess = Observation(
            now_s=now_s,
            visible=last.waiting,
            in_flight=last.in_flight,
            arriving=1,
            workers=last.ready,
            starting=last.booting,
            worker_rate_ips=self._capacity.rate.value,
            boot_s=self._capacity.boot.value,
            ages_s=last.ages_s,
        )
        return would_scale_out(guess, self.config, self._state)

    def booted(self, boot_s: float) -> None:
        self._capacity.booted(boot_s)

    def batch_done(self, worker: str, images: int, busy_s: float) -> None:
        if busy_s > 0:
            self._capacity.worker_rate(worker, images / busy_s)


def iras(fleet: Fleet, latency_target_s: float) -> DecidePolicy:
    """The latency objective: the smallest fleet that keeps p95 under the target."""
    config = ScalingConfig(
        min_workers=0,
        max_workers=fleet.max_workers,
        backlog_per_worker=BACKLOG_PER_WORKER,
        scale_in_cooldown_s=SCALE_IN_COOLDOWN_S,
        latency_target_s=latency_target_s,
        billing_minimum_s=fleet.billing_minimum_s,
    )
    return DecidePolicy("iras", config, fleet)


def backlog(fleet: Fleet) -> DecidePolicy:
    """Today's rule with the gateway's defaults: one worker per 10 requests of backlog, to
    zero 0.5 s after idle."""
    config = ScalingConfig(
        min_workers=0,
        max_workers=fleet.max_workers,
        backlog_per_worker=BACKLOG_PER_WORKER,
        scale_in_cooldown_s=SCALE_IN_COOLDOWN_S,
        latency_target_s=None,
        billing_minimum_s=fleet.billing_minimum_s,
    )
    return DecidePolicy("backlog", config, fleet)
