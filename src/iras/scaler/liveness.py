"""Which live instances have no working worker: the heartbeats that stopped.

A worker tags its instance `iras:heartbeat` every `IRAS_WORKER_HEARTBEAT_S`
(`iras.worker.instance`), and the scaler reads the tags in the DescribeInstances it makes
anyway. An instance whose tag has not changed for `IRAS_WORKER_SILENT_S` (or that never
got one since this gateway first saw it) is running and billed without a worker that
takes work: it crashed past its unit's restarts, hung, or never started. The scaler
terminates it and counts it out, so the next decision replaces it.

Only changes are looked at, each on this gateway's own clock, so the tag's value (the
worker's wall clock) is never compared with the gateway's. A gateway that just started
(or just took the lease) therefore waits a whole `silent_s` before it calls anything
silent: it has no history to judge by.
"""

from __future__ import annotations

from collections.abc import Iterable

from iras.scaler.fleet import Instance


class HeartbeatWatch:
    """When each live instance's heartbeat tag last changed, as this gateway saw it."""

    def __init__(self, silent_s: float) -> None:
        """`silent_s` <= 0 turns the watch off: nothing is ever silent."""
        self.silent_s = silent_s
        self._changed: dict[str, tuple[str | None, float]] = {}

    def silent(self, live: Iterable[Instance], now_s: float) -> list[Instance]:
        """Record the heartbeats of `live` seen at `now_s`; those silent for `silent_s`."""
        silent: list[Instance] = []
        seen: dict[str, tuple[str | None, float]] = {}
        for instance in live:
            last = self._changed.get(instance.id)
            if last is None or last[0] != instance.heartbeat:
                last = (instance.heartbeat, now_s)
            seen[instance.id] = last
            if self.silent_s > 0 and now_s - last[1] >= self.silent_s:
                silent.append(instance)
        self._changed = seen  # instances no longer live are forgotten
        return silent

    def quiet_for_s(self, instance_id: str, now_s: float) -> float | None:
        """Seconds since `instance_id`'s heartbeat last changed (None: not watched)."""
        last = self._changed.get(instance_id)
        return None if last is None else now_s - last[1]
