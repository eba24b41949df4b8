"""The latency objective: the smallest fleet that answers within a p95 target.

Used when `IRAS_LATENCY_TARGET_S` is set. Pure like the rest of the policy: the figures it
needs come in the `Observation` (the capacity model's per-worker rate R and boot time B,
each live instance's age) and its memory in the `PolicyState`.

The rule in words:

- **Arrivals.** Uploads since the previous look give the arrival rate, smoothed twice:
  over about a quarter of a boot (to size the fleet) and over a relaunch's cost (to
  judge how sparse the traffic is).
- **Scale out just in time.** Let the queue take a share of the target (Tb, 80%: the rest
  covers the batch's own time and the estimates' noise). A fleet of n meets the target if
  what waits, plus what piles up during one boot while the fleet is slower than the
  arrivals, can be cleared within Tb: `work + max(0, arrivals - n R) B <= n R Tb`. The
  fleet wanted is the smallest such n, counting workers already starting. So the fleet
  may run a little short for less than a boot, because a worker launched now arrives
  before the queue outgrows the target: it is launched one boot before it is needed, not
  as soon as a queue forms. A one-off burst gets the workers that clear it within the
  target once they are up, not a fleet sized for a rate that has already stopped.
- **Scale in gradually, with hysteresis.** Capacity beyond need is released only when
  a smaller fleet would still meet a stricter test (arrivals 5% higher, half of Tb)
  and the surplus has lasted a settling time (an eighth of a boot, 1-5 s); then half
  the surplus goes (at least one), and the timer starts again. This runs with work
  present too: a fleet raised to 20 by a burst shrinks while a trickle goes on.
- **The billing minimum.** An instance is billed at least `billing_minimum_s` (EC2: 60 s)
  from launch, boot included. Releasing one younger than that saves nothing, so scale-in
  counts only instances past it (and `pick_released` releases those first); younger
  ones stay, for free, until they reach it.
- **The last worker stays warm** while the traffic is dense enough that the next image
  will come before a relaunch would pay for itself. A relaunch costs max(minimum, B)
  instance-seconds, plus, when B exceeds the target, a cold boot's wait on the next
  images, valued at B more: that is K. The last worker is released once nothing has
  arrived for a quiet time: ten mean gaps of the slow arrival rate (a Poisson stream
  is silent that long once in e^10 gaps), within [K/4, K]. A trickle of one image a
  second keeps it (quiet time K/4); traffic sparser than one image per K/10 s lets it
  go after K; the course's lone burst lets it go at its billing minimum.

The answer always lies in `[min_workers, max_workers]` and is at least 1 while there is
work.
"""

from __future__ import annotations

import math
from dataclasses import replace

from iras.scaler.decision import Decision, Observation, PolicyState, ScalingConfig

#: Share of the target the queue may take; the rest is the batch's time and noise.
QUEUE_SHARE = 0.8
#: Scale-in's stricter test: arrivals this much higher, and this share of the queue's.
SCALE_IN_RATE_MARGIN = 1.05
SCALE_IN_QUEUE_SHARE = 0.5
#: A silence this many mean gaps long says the traffic has stopped.
QUIET_GAPS = 10.0
#: When the capacity model has no figures yet (it always has its guesses in practice).
FALLBACK_RATE_IPS = 1.0


def fleet_needed(
    work: float, arrival_ips: float, rate_ips: float, boot_s: float, queue_s: float
) -> float:
    """The smallest fleet (fractional) with `work + max(0, arrival - n R) B <= n R Tb`.

    The left side falls and the right side grows with n, so the root is where they meet:
    in the region n <= arrival / R when the work fits within the arrivals of Tb, else
    where the fleet outruns the arrivals and only the work counts.
    """
    if work <= 0 and arrival_ips <= 0:
        return 0.0
    if work <= arrival_ips * queue_s:
        return (work + arrival_ips * boot_s) / (rate_ips * (boot_s + queue_s))
    return work / (rate_ips * queue_s)


def smoothed(previous: float, count: int, dt_s: float, tau_s: float) -> float:
    """An exponentially weighted arrival rate: `count` arrivals over the last `dt_s`."""
    if dt_s <= 0:
        return previous + count / tau_s  # looks at one instant: each arrival adds 1/tau
    weight = 1.0 - math.exp(-dt_s / tau_s)
    return previous + weight * (count / dt_s - previous)


def relaunch_cost_s(boot_s: float, minimum_s: float, target_s: float) -> float:
    """K: what releasing the last worker and launching one for the next image costs, in
    instance-seconds, the cold boot's wait included when it breaks the target."""
    return max(minimum_s, boot_s) + (boot_s if boot_s > target_s else 0.0)


def decide_for_target(
    observation: Observation, config: ScalingConfig, state: PolicyState
) -> Decision:
    """The latency objective's answer; see the module docstring for the rule."""
    assert config.latency_target_s is not None
    now = observation.now_s
    rate = observation.worker_rate_ips or FALLBACK_RATE_IPS
    boot = max(0.0, observation.boot_s or 0.0)
    minimum = config.billing_minimum_s
    queue_s = QUEUE_SHARE * config.latency_target_s
    relaunch_s = relaunch_cost_s(boot, minimum, config.latency_target_s)
    settle_s = min(5.0, max(1.0, boot / 8))
    follow_s = min(10.0, max(1.0, boot / 4))

    dt = None if state.looked_s is None else now - state.looked_s
    arrivals = observation.uploaded
    fast = slow = 0.0
    if dt is not None:
        fast = smoothed(state.arrival_ips, arrivals, dt, tau_s=follow_s)
        slow = smoothed(state.slow_arrival_ips, arrivals, dt, tau_s=max(relaunch_s, follow_s))
    last_arrival = now if arrivals > 0 else state.last_arrival_s

    work = observation.visible + observation.in_flight + observation.arriving
    current = observation.workers + observation.starting
    need = math.ceil(fleet_needed(work, fast, rate, boot, queue_s) - 1e-9)
    hold = math.ceil(
        fleet_needed(work, fast * SCALE_IN_RATE_MARGIN, rate, boot, queue_s * SCALE_IN_QUEUE_SHARE)
        - 1e-9
    )
    if work == 0:
        need = min(need, current)  # nothing waits: the fleet keeps up, whatever the rate says
    quiet_s = min(relaunch_s, max(relaunch_s / 4, QUIET_GAPS / slow if slow > 0 else 0.0))
    idle_s = math.inf if last_arrival is None else now - last_arrival
    if work == 0 and hold <= 1 and idle_s < quiet_s:
        hold = max(hold, 1)  # the last worker stays warm through short gaps
    elif work == 0 and hold <= 1:
        hold = 0  # quiet for long enough: even the last worker may go
    floor = max(config.min_workers, 1 if work > 0 else 0)
    hold = max(hold, floor)
    figures = {
        "work": float(work),
        "arrival_ips": round(fast, 3),
        "slow_arrival_ips": round(slow, 4),
        "worker_rate_ips": round(rate, 3),
        "boot_s": round(boot, 3),
        "need": float(need),
        "hold": float(hold),
        "quiet_s": round(quiet_s, 2),
        "idle_s": round(min(idle_s, 1e9), 2),
    }
    remembered = PolicyState(
        last_busy_s=now if work > 0 else state.last_busy_s,
        looked_s=now,
        arrival_ips=fast,
        slow_arrival_ips=slow,
        last_arrival_s=last_arrival,
    )
    sizes = f"{work} waiting, {fast:.1f}/s arriving, {rate:.1f}/s per worker, boot {boot:.0f} s"

    wanted = _clamp(max(need, floor), config)
    if wanted > current:
        return Decision(
            wanted, remembered, f"scale out: {sizes} -> {wanted} workers", figures=figures
        )
    if current > config.max_workers:
        return Decision(config.max_workers, remembered, "above max_workers", figures=figures)
    if hold >= current:
        return Decision(current, remembered, f"steady: {sizes}", figures=figures)

    # Surplus: release gradually, once it has lasted, and only what the minimum has paid for.
    since = state.surplus_since_s if state.surplus_since_s is not None else now
    waiting = replace(remembered, surplus_since_s=since)
    if now - since < settle_s:
        left = settle_s - (now - since)
        return Decision(
            current,
            waiting,
            f"surplus: {current} > {hold} needed, settling {left:.1f} s",
            recheck_in_s=left,
            figures=figures,
        )
    ages = observation.ages_s
    paid_for = sum(age >= minimum for age in ages) if ages else current
    if paid_for == 0:
        left = minimum - max(ages)
        return Decision(
            current,
            waiting,
            f"surplus: {current} > {hold} needed, all within the {minimum:.0f} s billed minimum",
            recheck_in_s=max(left, 0.0),
            figures=figures,
        )
    surplus = current - hold
    release = min(paid_for, max(1, math.ceil(surplus / 2)))
    desired = current - release
    reason = f"scale in: {sizes}; {hold} needed, releasing {release}"
    if hold == 0:
        reason = f"scale in: nothing for {idle_s:.0f} s (quiet after {quiet_s:.0f} s)"
    stepped = replace(remembered, surplus_since_s=now)
    return Decision(desired, stepped, reason, recheck_in_s=settle_s, figures=figures)


def _clamp(count: int, config: ScalingConfig) -> int:
    return max(config.min_workers, min(config.max_workers, count))
