"""The autoscaler's recent scale events, with their reasons and the figures they used.

An operator asking "why did it launch three workers at 10:02?" needs the answer the
policy gave then, not the one it would give now: each event keeps the reason and the
figures (`Decision.figures`: work, rates, boot time, ...) of the decision that made it.
Only changes are kept, in a bounded log (a fleet at rest makes no entries, however long
it runs); the latest decision, changed or not, is kept beside it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from iras.scaler.decision import Decision, Observation

#: Scale events kept for `/v1/scaler`.
DECISIONS_KEPT = 50


def plain_figures(figures: Mapping[str, float]) -> dict[str, float | None]:
    """`figures` as JSON can carry them: floats, with None for what is not finite (JSON
    has no infinity; "no worker can meet the target" may be one)."""
    plain: dict[str, float | None] = {}
    for name, value in figures.items():
        number = float(value)
        plain[str(name)] = number if math.isfinite(number) else None
    return plain


def decision_fields(observation: Observation, workers: int, decision: Decision) -> dict[str, Any]:
    """A scale line's figures as log fields (`extra=`: keys of a JSON line), so that a
    log store answers "why" as `/v1/scaler` does: what was seen, what was decided, why."""
    return {
        "workers": workers,
        "desired": decision.desired,
        "reason": decision.reason,
        "backlog": observation.visible,
        "in_flight": observation.in_flight,
        "arriving": observation.arriving,
        "starting": observation.starting,
        "worker_rate_ips": observation.worker_rate_ips,
        "boot_s": observation.boot_s,
        "figures": plain_figures(decision.figures),
    }


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    """One change of the fleet's size: when, from how many live instances to how many."""

    t: float  # seconds since the Unix epoch
    before: int
    after: int
    reason: str
    figures: dict[str, float | None]

    @property
    def direction(self) -> str:
        return "out" if self.after > self.before else "in"

    def as_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "from": self.before,
            "to": self.after,
            "reason": self.reason,
            "figures": self.figures,
        }


class DecisionLog:
    """The last `DECISIONS_KEPT` scale events, oldest first."""

    def __init__(self, kept: int = DECISIONS_KEPT) -> None:
        self._events: deque[ScaleEvent] = deque(maxlen=kept)

    def __len__(self) -> int:
        return len(self._events)

    def add(self, event: ScaleEvent) -> None:
        self._events.append(event)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [event.as_dict() for event in self._events]
