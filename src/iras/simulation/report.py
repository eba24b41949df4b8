"""The figures of a run, and the text table and JSON that `iras simulate` prints.

Latency percentiles are `iras.bench.stats.percentile` (linear between ranks, numpy's
default), the same as `iras bench` reports, over every image; an image never answered
counts as infinitely late, and JSON shows an infinite figure as null. Cost is billed
instance-seconds at the price per hour (`iras.scaler.billing.cost`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from iras.bench.stats import percentile
from iras.scaler import billing
from iras.simulation.types import Run

#: Latencies this close above the target count as within it (float rounding: an image
#: the oracle schedules to end exactly at its deadline ends 1e-14 s either side).
TOLERANCE_S = 1e-9


@dataclass(frozen=True, slots=True)
class Figures:
    """One policy's run, summed up. JSON keys are these names (add, never rename)."""

    policy: str
    images: int
    p50_s: float
    p95_s: float
    max_s: float
    mean_s: float
    within_target: float  # share of images answered within the latency target
    unanswered: int
    instance_seconds: float  # billed, with the minimum
    busy_seconds: float  # images / rate: the work itself
    cost: float  # USD
    cost_per_1000: float  # USD per 1,000 images
    peak_workers: int
    launches: int
    scale_events: int  # instants at which the policy changed the fleet


def figures(policy: str, run: Run, latency_target_s: float, price_per_hour: float) -> Figures:
    latencies = sorted(run.latencies_s)
    images = len(latencies)
    finite = [value for value in latencies if math.isfinite(value)]
    cost = billing.cost(run.instance_seconds, price_per_hour)
    return Figures(
        policy=policy,
        images=images,
        p50_s=percentile(latencies, 50),
        p95_s=percentile(latencies, 95),
        max_s=latencies[-1],
        mean_s=sum(finite) / len(finite) if len(finite) == images else math.inf,
        within_target=sum(value <= latency_target_s + TOLERANCE_S for value in finite) / images,
        unanswered=images - len(finite),
        instance_seconds=run.instance_seconds,
        busy_seconds=run.busy_seconds,
        cost=cost,
        cost_per_1000=cost / images * 1000,
        peak_workers=run.peak_workers,
        launches=len(run.workers),
        scale_events=run.scale_events,
    )


def to_json(
    trace: Mapping[str, Any], parameters: Mapping[str, Any], table: Sequence[Figures]
) -> dict[str, Any]:
    """The one JSON object: the trace, the parameters, and `policies`, one per run."""
    return {
        "trace": _finite(dict(trace)),
        "parameters": _finite(dict(parameters)),
        "policies": [_finite(asdict(row)) for row in table],
    }


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """Infinite or NaN figures as None, floats rounded to microseconds (or micro-dollars)."""
    return {
        key: (None if not math.isfinite(v) else round(v, 6)) if isinstance(v, float) else v
        for key, v in values.items()
    }


COLUMNS = (
    ("policy", "policy", "{}"),
    ("images", "images", "{:d}"),
    ("p50_s", "p50 s", "{:.2f}"),
    ("p95_s", "p95 s", "{:.2f}"),
    ("max_s", "max s", "{:.2f}"),
    ("within_target", "in target", "{:.1%}"),
    ("instance_seconds", "instance-s", "{:.0f}"),
    ("busy_seconds", "busy-s", "{:.0f}"),
    ("cost", "cost $", "{:.4f}"),
    ("cost_per_1000", "$/1000", "{:.5f}"),
    ("peak_workers", "peak", "{:d}"),
    ("scale_events", "scale events", "{:d}"),
)


def render(title: str, table: Sequence[Figures], notes: Sequence[str] = ()) -> str:
    """A plain-text table, one row per policy, under `title`."""
    rows = [[label for _, label, _ in COLUMNS]]
    for figures_ in table:
        values = asdict(figures_)
        rows.append([_cell(form, values[key]) for key, _, form in COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [title, ""]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    lines += ["", *notes] if notes else []
    return "\n".join(lines)


def _cell(form: str, value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "never"
    return form.format(value)
