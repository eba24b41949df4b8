"""The scaling policy: how many workers the fleet should have, as a pure function.

`decide` sees one `Observation` (the backlog and the fleet at one instant), the
`ScalingConfig` and the `PolicyState` it returned last time, and gives back a `Decision`:
the desired worker count and the next state. It reads no clock, makes no call and keeps
no globals; the controller owns the clock, the AWS I/O and the metrics, and only acts on
the answer. So the rule is tested with tables and simulated control periods, no AWS.

Two rules. With no latency target (`IRAS_LATENCY_TARGET_S` unset, `iras serve`'s
default) the idle rule below decides; with one, the latency objective
(`iras.scaler.objective`, whose docstring says its rule in words).

The idle rule in words: work is what waits (visible), what workers hold (in flight) and what
the gateway accepted but has not queued yet (arriving). With work, scale out at once to
one worker per `backlog_per_worker` requests, and never scale in. Without work, keep
the fleet until a look at least `scale_in_cooldown_s` after the first look that found
none still finds none, then fall to `min_workers`. A look that finds no work although
uploads arrived since the one before counts as busy: their work came and went between
two looks (a client sending one image at a time keeps a worker busy for all but a few
milliseconds in every 40). The answer always lies in `[min_workers, max_workers]`, and
is at least 1 while there is work.
"""

from __future__ import annotations

import math

from iras.scaler.decision import (
    Decision,
    Member,
    Observation,
    PolicyState,
    ScalingConfig,
)
from iras.scaler.objective import decide_for_target

__all__ = [
    "Decision",
    "Member",
    "Observation",
    "PolicyState",
    "ScalingConfig",
    "decide",
    "pick_released",
    "would_scale_out",
]


def decide(observation: Observation, config: ScalingConfig, state: PolicyState) -> Decision:
    """Return the desired worker count for `observation`, and the state to pass next time.

    With `config.latency_target_s` set, the latency objective decides
    (`objective.decide_for_target`); without, the idle rule of this module's docstring.
    """
    if config.latency_target_s is not None:
        return decide_for_target(observation, config, state)
    return _idle_rule(observation, config, state)


def would_scale_out(guess: Observation, config: ScalingConfig, state: PolicyState) -> bool:
    """Whether `decide` would add workers for `guess`: the last look's queue and fleet
    with the uploads arriving since. The gateway asks it on each upload (and the
    simulator on its uploads) to look at once only when the answer may be more workers.
    """
    return decide(guess, config, state).desired > guess.workers + guess.starting


def _idle_rule(observation: Observation, config: ScalingConfig, state: PolicyState) -> Decision:
    work = observation.visible + observation.in_flight + observation.arriving
    current = observation.workers + observation.starting

    if work > 0:
        needed = math.ceil(work / config.backlog_per_worker)
        desired = max(1, _clamp(max(current, needed), config))
        reason = f"backlog {work} -> {needed} workers ({config.backlog_per_worker} per worker)"
        if desired != needed:
            reason += f", keeping {desired} (current {current}, bounds {_bounds(config)})"
        return Decision(desired, PolicyState(last_busy_s=observation.now_s), reason)

    desired = _clamp(current, config)
    if observation.uploaded > 0:
        # Measured: at concurrency 1 one look in four finds nothing, two in a row 0.5 s
        # apart happen within seconds, and scaling in then cost the next image a 5 s
        # cold start.
        reason = f"busy: {observation.uploaded} uploads since the last look"
        return Decision(desired, PolicyState(last_busy_s=observation.now_s), reason)

    # The cooldown runs from the first look that found no work, and scale-in needs a
    # second look after it: one empty look proves little (measured: at concurrency 50 a
    # look can fall between a burst of answers and the next uploads, and scaling in
    # then stopped two busy workers).
    if desired <= config.min_workers:
        return Decision(desired, state, "idle: at the floor")
    first_look = state.idle_since_s is None
    idle_since_s = observation.now_s if first_look else state.idle_since_s
    assert idle_since_s is not None
    idle_state = PolicyState(last_busy_s=state.last_busy_s, idle_since_s=idle_since_s)
    idle_s = observation.now_s - idle_since_s
    if not first_look and idle_s >= config.scale_in_cooldown_s:
        return Decision(config.min_workers, idle_state, f"idle: scale in to {config.min_workers}")
    remaining_s = config.scale_in_cooldown_s - idle_s
    return Decision(
        desired,
        idle_state,
        f"idle: cooling down, {remaining_s:.1f} s before scale-in",
        recheck_in_s=max(remaining_s, 0.0),
    )


def _clamp(count: int, config: ScalingConfig) -> int:
    return max(config.min_workers, min(config.max_workers, count))


def _bounds(config: ScalingConfig) -> str:
    return f"[{config.min_workers}, {config.max_workers}]"


def pick_released(members: list[Member], count: int, billing_minimum_s: float) -> list[str]:
    """The keys of the `count` instances to release first.

    Those past the billing minimum first: releasing one saves every second from now on.
    Among them, starting ones first (their capacity is not there yet), then the newest
    (the older ones have proved themselves). Last, those still within the minimum,
    oldest first: releasing one saves nothing until its minimum is up, so the one
    closest to it goes first. (With no minimum, as locally: starting first, then newest.)
    """

    def order(member: Member) -> tuple[bool, bool, float]:
        within_minimum = member.age_s < billing_minimum_s
        if within_minimum:
            return (True, False, -member.age_s)
        return (False, not member.starting, member.age_s)

    return [member.key for member in sorted(members, key=order)[: max(0, count)]]
