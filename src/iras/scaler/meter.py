"""The fleet's bill as this gateway sees it: instance-seconds, cost, cost per 1,000 images.

Each instance seen live is metered as a run: from its launch (or its start, with a warm
pool: EC2 bills each start anew, with a new minimum) until it is seen gone. The minimum
is counted from the start, not only once the instance is gone: it is owed the moment the
instance launches, so instance-seconds are what has been committed so far, and the figure
never falls or jumps when an instance is released.

An instance this gateway did not launch (it ran before a restart, or another gateway
launched it) is metered from when this gateway first saw it: the seconds before were
spent on images this gateway did not answer. Of its minimum, only what was still to run
then falls to this gateway, when its age is known (EC2's LaunchTime); with no age, only
its seconds since.

Plain bookkeeping: the caller passes a monotonic `now_s` and what it saw; arithmetic is
`iras.scaler.billing`'s, which the policy and the simulator use too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from iras.scaler import billing

#: How long an instance just launched may be missing from the fleet's listing (EC2's
#: listing is eventually consistent) before it counts as gone.
LISTING_LAG_S = 30.0


def billed_share_s(age_at_start_s: float | None, running_s: float, minimum_s: float) -> float:
    """Seconds billed for a run of `running_s` that began at an instance age of
    `age_at_start_s` (0: launched then; None: unknown, so no minimum is counted)."""
    running_s = max(0.0, running_s)
    if age_at_start_s is None:
        return running_s
    return billing.billed_s(age_at_start_s + running_s, minimum_s) - age_at_start_s


@dataclass(slots=True)
class _Run:
    started_s: float  # when launched here, or first seen (monotonic)
    age_at_start_s: float | None  # the instance's age then: 0 when launched here
    listed: bool  # seen in a listing of the fleet since


class BillingMeter:
    """Instance-seconds of the runs seen, and images answered meanwhile."""

    def __init__(self, minimum_s: float, price_per_hour: float | None) -> None:
        self.minimum_s = minimum_s
        self.price_per_hour = price_per_hour
        self.images = 0
        self._runs: dict[str, _Run] = {}  # instance id -> its run now
        self._closed_s = 0.0  # billed seconds of runs that ended

    def launched(self, key: str, now_s: float) -> None:
        """`key` was launched (or a stopped one started) by this gateway at `now_s`."""
        self._close(key, now_s)
        self._runs[key] = _Run(now_s, 0.0, listed=False)

    def seen(self, live: Mapping[str, float | None], now_s: float) -> None:
        """The live instances now, each with its age if known: new ones are metered from
        now, runs of instances no longer live end now."""
        for key, age_s in live.items():
            run = self._runs.get(key)
            if run is None:
                self._runs[key] = _Run(now_s, None if age_s is None else max(0.0, age_s), True)
            else:
                run.listed = True
        for key, run in list(self._runs.items()):
            unlisted_young = not run.listed and now_s - run.started_s < LISTING_LAG_S
            if key not in live and not unlisted_young:
                self._close(key, now_s)

    def answered(self, images: int = 1) -> None:
        self.images += images

    def age_s(self, key: str, now_s: float) -> float | None:
        """Seconds since `key` was launched (a lower bound when its launch is unknown)."""
        run = self._runs.get(key)
        if run is None:
            return None
        return (run.age_at_start_s or 0.0) + max(0.0, now_s - run.started_s)

    def instance_s(self, now_s: float) -> float:
        """Billed instance-seconds so far, the minimum of each run included."""
        return self._closed_s + sum(self._billed(run, now_s) for run in self._runs.values())

    def cost(self, now_s: float) -> float | None:
        """Dollars so far; None when the price is unknown."""
        if self.price_per_hour is None:
            return None
        return billing.cost(self.instance_s(now_s), self.price_per_hour)

    def cost_per_1000(self, now_s: float) -> float | None:
        """Dollars per 1,000 images answered; None before any, or with no price."""
        spent = self.cost(now_s)
        if spent is None or self.images == 0:
            return None
        return spent * 1000.0 / self.images

    def _billed(self, run: _Run, now_s: float) -> float:
        return billed_share_s(run.age_at_start_s, now_s - run.started_s, self.minimum_s)

    def _close(self, key: str, now_s: float) -> None:
        run = self._runs.pop(key, None)
        if run is not None:
            self._closed_s += self._billed(run, now_s)
