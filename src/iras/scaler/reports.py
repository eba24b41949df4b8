"""What workers' results tell the autoscaler: a worker's throughput and an instance's boot.

Every result's `timings` carry the worker's images per second of busy time
(`worker_rate_ips`, `iras.worker.throughput`) and its seconds since it began receiving
(`worker_up_s`). The rate goes to the capacity model as it comes. The boot time is taken
from the first result of each instance this gateway launched: the worker became ready at
`now - worker_up_s` on the gateway's own clock (late by the result's trip through SQS,
tens of milliseconds), so launch to ready needs no clock of another machine.

Until its first result, an instance launched here counts as booting (`booting`): scale-in
releases such instances first, whatever EC2 says of their state.

Results name their worker by the instance's name locally (`IRAS_WORKER_NAME`, which the
local runner sets) and by its id on AWS (the worker's default), so both are looked up.
Results come from any worker, old ones included: a result without these keys, or with
values that are not numbers, teaches nothing and is ignored, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from iras.scaler.capacity import CapacityModel
from iras.scaler.fleet import Instance
from iras.scaler.meter import LISTING_LAG_S


@dataclass(frozen=True, slots=True)
class Report:
    """What one result says of its worker."""

    worker: str
    rate_ips: float | None
    up_s: float | None


def read_report(result: object) -> Report | None:
    """The worker's figures in `result`; None when it names no worker."""
    if not isinstance(result, Mapping):
        return None
    worker = result.get("worker")
    if not isinstance(worker, str) or not worker:
        return None
    timings = result.get("timings")
    if not isinstance(timings, Mapping):
        timings = {}
    return Report(
        worker, _number(timings.get("worker_rate_ips")), _number(timings.get("worker_up_s"))
    )


def _number(value: Any) -> float | None:
    """A finite number >= 0, else None (neither a rate nor an up time is negative)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


class WorkerReports:
    """Feeds a `CapacityModel` from results, knowing which instances it launched when."""

    def __init__(self, model: CapacityModel) -> None:
        self.model = model
        # Instance id -> the instance and when this gateway launched it (monotonic).
        self._awaiting_boot: dict[str, tuple[Instance, float]] = {}
        self._instance_ids: dict[str, str] = {}  # worker name or instance id -> instance id

    def launched(self, instance: Instance, now_s: float) -> None:
        """This gateway launched `instance` (or started it again) at `now_s`."""
        self._awaiting_boot[instance.id] = (instance, now_s)
        self._know(instance)

    def fleet(self, live: Iterable[Instance], now_s: float) -> None:
        """The live instances at `now_s`: their names; launches no longer live forgotten
        (unless just made: EC2's listing may not show a new instance at once)."""
        live_ids = set()
        self._instance_ids = {}
        for instance in live:
            live_ids.add(instance.id)
            self._know(instance)
        for instance_id, (instance, launched_s) in list(self._awaiting_boot.items()):
            if instance_id in live_ids:
                continue
            if now_s - launched_s < LISTING_LAG_S:
                self._know(instance)
            else:
                del self._awaiting_boot[instance_id]

    def booting(self, instance_id: str) -> bool:
        """Whether `instance_id` was launched here and no result of its worker has come
        yet: running, as EC2 sees it, but not yet taking work (locally, where EC2 shows
        no instance pending, a worker still loading its model)."""
        return instance_id in self._awaiting_boot

    def result(self, result: object, now_s: float) -> None:
        """Learn what `result` (a result dict, as the reply queue brings it) says."""
        report = read_report(result)
        if report is None:
            return
        if report.rate_ips is not None:
            self.model.worker_rate(report.worker, report.rate_ips)
        instance_id = self._instance_ids.get(report.worker)
        awaiting = self._awaiting_boot.get(instance_id) if instance_id else None
        if awaiting is None:
            return
        instance, launched_s = awaiting
        if report.up_s is None:  # a worker that does not say: up, but no sample
            del self._awaiting_boot[instance.id]
            return
        boot_s = (now_s - report.up_s) - launched_s
        # Negative: a worker that was ready before this launch, under a name used again
        # (a late result of a released instance); wait for the new one's.
        if boot_s >= 0:
            self.model.booted(boot_s)
            del self._awaiting_boot[instance.id]

    def _know(self, instance: Instance) -> None:
        self._instance_ids[instance.id] = instance.id
        if instance.name:
            self._instance_ids[instance.name] = instance.id
