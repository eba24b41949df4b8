"""The capacity model: what one worker can do and how long one takes to boot, measured.

The policy needs two figures about the fleet, a worker's throughput (images per second of
busy time) and its boot time (launch until it takes work). Both are configured only as
starting guesses (`IRAS_WORKER_RATE_IPS`, `IRAS_WORKER_BOOT_S`): an instance type, a
model or a cloud region changes them by integer factors, and a policy that trusts a
wrong guess either overspends or misses its target. So the controller (and the
simulator, with the same code) feeds this model what workers report, and the policy uses
the estimate: the median of recent samples, robust to one slow boot or one worker on a
noisy host. Until a sample arrives the guess stands; `figures()` shows both.

Pure bookkeeping: no clock, no I/O. Callers pass the samples they measured.
"""

from __future__ import annotations

import math
import statistics
from collections import OrderedDict, deque
from dataclasses import dataclass

#: Boot samples kept: enough for a stable median, few enough to follow a new AMI.
BOOT_SAMPLES = 15
#: Workers whose latest throughput is kept (the fleet's recent members).
RATE_WORKERS = 50


@dataclass(frozen=True, slots=True)
class Estimate:
    """One figure: the guess configured, what was measured (None: nothing yet), and the
    value to use."""

    configured: float
    measured: float | None
    samples: int

    @property
    def value(self) -> float:
        return self.configured if self.measured is None else self.measured


class CapacityModel:
    """Rolling estimates of per-worker throughput and boot time."""

    def __init__(self, rate_guess_ips: float, boot_guess_s: float) -> None:
        if not (rate_guess_ips > 0 and math.isfinite(rate_guess_ips)):
            raise ValueError(f"the worker rate guess must be > 0, got {rate_guess_ips}")
        if not (boot_guess_s >= 0 and math.isfinite(boot_guess_s)):
            raise ValueError(f"the boot time guess must be >= 0, got {boot_guess_s}")
        self._rate_guess = rate_guess_ips
        self._boot_guess = boot_guess_s
        self._rates: OrderedDict[str, float] = OrderedDict()  # worker -> its latest rate
        self._rate_samples = 0
        self._boots: deque[float] = deque(maxlen=BOOT_SAMPLES)
        self._boot_samples = 0

    def worker_rate(self, worker: str, images_per_s: float) -> None:
        """A worker's own report of its throughput over its recent busy time."""
        if not (images_per_s > 0 and math.isfinite(images_per_s)):
            return  # a worker that has not finished a batch yet reports nothing useful
        self._rates[worker] = images_per_s
        self._rates.move_to_end(worker)
        while len(self._rates) > RATE_WORKERS:
            self._rates.popitem(last=False)
        self._rate_samples += 1

    def booted(self, boot_s: float) -> None:
        """One instance's time from launch to its worker's first receive."""
        if boot_s >= 0 and math.isfinite(boot_s):
            self._boots.append(boot_s)
            self._boot_samples += 1

    @property
    def rate(self) -> Estimate:
        measured = statistics.median(self._rates.values()) if self._rates else None
        return Estimate(self._rate_guess, measured, self._rate_samples)

    @property
    def boot(self) -> Estimate:
        measured = statistics.median(self._boots) if self._boots else None
        return Estimate(self._boot_guess, measured, self._boot_samples)
