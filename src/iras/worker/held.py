"""Which received messages this worker still holds, and which need more time.

A message is hidden from other workers only for the queue's visibility timeout. A batch
that runs long (a slow model, a large batch, a busy machine) must extend that time before
it runs out, or a second worker takes the same request. The bookkeeping is pure: the
caller passes the clock in, and the heartbeat loop acts on what `due_for_extension` says.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Lease:
    hidden_until: float


class HeldMessages:
    """Receipt handles held by this worker, each with the time its visibility ends."""

    def __init__(self) -> None:
        self._leases: dict[str, _Lease] = {}

    def __len__(self) -> int:
        return len(self._leases)

    def __contains__(self, receipt_handle: object) -> bool:
        return receipt_handle in self._leases

    def add(self, receipt_handle: str, now: float, visibility_timeout_s: float) -> None:
        self._leases[receipt_handle] = _Lease(hidden_until=now + visibility_timeout_s)

    def discard(self, receipt_handle: str) -> None:
        self._leases.pop(receipt_handle, None)

    def due_for_extension(self, now: float, margin_s: float) -> list[str]:
        """Handles whose visibility ends within `margin_s` of `now`."""
        return [
            handle for handle, lease in self._leases.items() if lease.hidden_until - now <= margin_s
        ]

    def extended(self, receipt_handle: str, now: float, visibility_timeout_s: float) -> None:
        """Record that the visibility of a still-held message was reset to a full timeout."""
        lease = self._leases.get(receipt_handle)
        if lease is not None:
            lease.hidden_until = now + visibility_timeout_s
