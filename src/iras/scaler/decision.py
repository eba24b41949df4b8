"""What the scaling policy sees, remembers and answers: plain data, no behaviour.

`policy.decide` and its two rules (the idle rule, the latency objective in `objective`)
share these types; the controller and the simulator build them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ScalingConfig:
    """Bounds and targets of the policy; invalid values raise `ValueError` at once."""

    min_workers: int
    max_workers: int
    backlog_per_worker: int
    scale_in_cooldown_s: float
    #: A p95 target for upload -> result, in seconds; None: the idle rule.
    latency_target_s: float | None = None
    #: Seconds every instance is billed at least (EC2 per-second billing: 60; 0 locally).
    billing_minimum_s: float = 60.0

    def __post_init__(self) -> None:
        if self.min_workers < 0:
            raise ValueError(f"min_workers must be >= 0, got {self.min_workers}")
        if self.max_workers < max(1, self.min_workers):
            raise ValueError(
                f"max_workers must be >= 1 and >= min_workers ({self.min_workers}), "
                f"got {self.max_workers}"
            )
        if self.backlog_per_worker < 1:
            raise ValueError(f"backlog_per_worker must be >= 1, got {self.backlog_per_worker}")
        if not (math.isfinite(self.scale_in_cooldown_s) and self.scale_in_cooldown_s >= 0):
            raise ValueError(
                f"scale_in_cooldown_s must be a finite number >= 0, got {self.scale_in_cooldown_s}"
            )


@dataclass(frozen=True, slots=True)
class Observation:
    """What the controller saw at `now_s` (a monotonic clock, in seconds)."""

    now_s: float
    visible: int  # messages waiting in the request queue
    in_flight: int  # messages received by workers, not yet deleted
    arriving: int  # uploads accepted by the gateway but not yet queued
    workers: int  # live (running) workers
    starting: int  # workers launched but not yet running
    uploaded: int = 0  # uploads this gateway accepted since the previous look
    # The capacity model's estimates (measured, else the configured guesses); only the
    # latency objective uses them.
    worker_rate_ips: float | None = None  # images one worker classifies per busy second
    boot_s: float | None = None  # launch -> a worker taking work
    ages_s: tuple[float, ...] = ()  # seconds since launch of each live instance


@dataclass(frozen=True, slots=True)
class PolicyState:
    """What the policy remembers between periods (the idle rule uses the first two)."""

    last_busy_s: float | None = None  # when work was last seen > 0
    idle_since_s: float | None = None  # the first look that found no work, since then
    # The latency objective's memory: its arrival-rate estimates and timers.
    looked_s: float | None = None  # the previous look
    arrival_ips: float = 0.0  # arrivals per second, smoothed over about a quarter boot
    slow_arrival_ips: float = 0.0  # the same over a relaunch's cost: how sparse traffic is
    last_arrival_s: float | None = None  # the last look that found uploads
    surplus_since_s: float | None = None  # since when the fleet has been bigger than needed


@dataclass(frozen=True, slots=True)
class Decision:
    desired: int
    state: PolicyState
    reason: str  # short human text for logs
    recheck_in_s: float | None = None  # look again this soon (a cooldown is running)
    figures: Mapping[str, float] = field(default_factory=dict)  # what the answer used

    def next_look_in_s(self, period_s: float) -> float:
        """When to look again: after the period, or sooner when a cooldown ends first."""
        return period_s if self.recheck_in_s is None else min(period_s, self.recheck_in_s)


@dataclass(frozen=True, slots=True)
class Member:
    """A live instance, as scale-in chooses among them."""

    key: str  # the caller's handle (an instance id)
    starting: bool  # launched, not yet taking work
    age_s: float  # seconds since launch
