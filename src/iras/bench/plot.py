"""Charts of one run: each request's latency over time, and the fleet over time.

matplotlib is an optional dependency (`pip install 'iras[bench]'`), imported only here
and only when a chart is asked for; it draws with the Agg backend, no display needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iras.bench.report import Outcome


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def draw(
    path: Path,
    outcomes: Sequence[Outcome],
    timeline: Sequence[dict[str, Any]],
    started_t: float,
    title: str,
) -> None:
    """Write a PNG: latency (ms) against completion time on top, and below it the
    workers (running + starting) and backlog from the scaler's timeline, when there is
    one; the x axis is seconds since the run's first request (wall clock `started_t`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(
            "--plot needs matplotlib: pip install 'iras[bench]' (or pip install matplotlib)"
        ) from None
    rows = 2 if timeline else 1
    figure, axes = plt.subplots(rows, 1, figsize=(10, 3.2 * rows + 0.6), sharex=True, squeeze=False)
    latency_axis = axes[0][0]
    good = [o for o in outcomes if o.error is None]
    bad = [o for o in outcomes if o.error is not None]
    latency_axis.scatter(
        [o.done_s for o in good], [o.latency_s * 1000 for o in good], s=8, label="answered"
    )
    if bad:
        latency_axis.scatter(
            [o.done_s for o in bad],
            [o.latency_s * 1000 for o in bad],
            s=16,
            marker="x",
            color="tab:red",
            label="failed",
        )
    latency_axis.set_ylabel("latency (ms)")
    latency_axis.set_title(title)
    latency_axis.grid(alpha=0.3)
    latency_axis.legend(loc="upper left")
    if timeline:
        _draw_fleet(axes[1][0], timeline, started_t)
    axes[-1][0].set_xlabel("seconds since the first request")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _draw_fleet(axis: Any, timeline: Sequence[dict[str, Any]], started_t: float) -> None:
    times = [float(p["t"]) - started_t for p in timeline]
    workers = [int(p["workers"]) + int(p.get("starting", 0)) for p in timeline]
    axis.step(times, workers, where="post", color="tab:green", label="workers (incl. starting)")
    axis.set_ylabel("workers")
    axis.set_ylim(bottom=0, top=max([*workers, 1]) * 1.4)  # headroom for the legend
    axis.grid(alpha=0.3)
    backlog_axis = axis.twinx()
    backlog = [int(p["backlog"]) for p in timeline]
    in_flight = [int(p.get("in_flight", 0)) for p in timeline]
    backlog_axis.step(
        times,
        backlog,
        where="post",
        color="tab:orange",
        label="backlog (queued)",
    )
    backlog_axis.step(
        times,
        in_flight,
        where="post",
        color="tab:purple",
        linestyle="--",
        label="in flight",
    )
    backlog_axis.set_ylabel("requests")
    backlog_axis.set_ylim(bottom=0, top=max(1, *backlog, *in_flight) * 1.4)
    lines = axis.get_legend_handles_labels()
    more = backlog_axis.get_legend_handles_labels()
    axis.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", ncol=3)
