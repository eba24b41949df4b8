"""Charts of one run: each request's latency over time, the fleet over time, and where
the latency went by stage.

matplotlib is an optional dependency (`pip install 'iras[bench]'`), imported only here
and only when a chart is asked for; it draws with the Agg backend, no display needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iras.bench.report import Outcome
from iras.bench.stages import REST, REST_MEANING, Breakdown


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def draw(
    path: Path,
    outcomes: Sequence[Outcome],
    timeline: Sequence[dict[str, Any]],
    started_t: float,
    title: str,
    stages: Breakdown | None = None,
) -> None:
    """Write a PNG: latency (ms) against completion time on top, below it the workers
    (running + starting) and backlog from the scaler's timeline, when there is one (their
    x axis is seconds since the run's first request, wall clock `started_t`), and at the
    bottom the mean latency as a bar stacked by stage, when the answers had timings."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(
            "--plot needs matplotlib: pip install 'iras[bench]' (or pip install matplotlib)"
        ) from None
    heights = [3.2] * (2 if timeline else 1) + ([2.2] if stages else [])
    figure = plt.figure(figsize=(10, sum(heights) + 0.6))
    grid = figure.add_gridspec(len(heights), 1, height_ratios=heights)
    latency_axis = figure.add_subplot(grid[0])
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
    time_axis = latency_axis
    if timeline:
        latency_axis.tick_params(labelbottom=False)
        time_axis = figure.add_subplot(grid[1], sharex=latency_axis)
        _draw_fleet(time_axis, timeline, started_t)
    time_axis.set_xlabel("seconds since the first request")
    if stages:
        _draw_stages(figure.add_subplot(grid[-1]), stages)
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


def _draw_stages(axis: Any, stages: Breakdown) -> None:
    """One bar, the mean end-to-end latency, cut into each stage's part of it (its share
    of the mean, so the parts add up even when not every image had every stage), with
    each stage's p50 and p95 in the legend below it."""
    mean_ms = stages.end_to_end.mean_ms
    left_ms = 0.0
    for stage, figures in stages.stages.items():
        width_ms = figures.share * mean_ms
        axis.barh(
            [0],
            [width_ms],
            left=[left_ms],
            height=0.8,
            label=f"{stage}: p50 {figures.p50_ms:.0f}, p95 {figures.p95_ms:.0f} ms",
        )
        if figures.share >= 0.06:  # room for the figure inside its part
            axis.text(left_ms + width_ms / 2, 0, f"{figures.share:.0%}", ha="center", va="center")
        left_ms += width_ms
    axis.set_yticks([])
    axis.set_ylim(-1.8, 0.5)  # the legend sits below the bar, inside the panel
    axis.set_xlim(0, max(left_ms, 1.0))
    axis.set_title(f"where the mean latency went ({REST}: {REST_MEANING})", fontsize="medium")
    axis.set_xlabel(
        f"ms: {stages.end_to_end.count} answers, end to end mean {mean_ms:.0f} ms, "
        f"p50 {stages.end_to_end.p50_ms:.0f} ms, p95 {stages.end_to_end.p95_ms:.0f} ms"
    )
    axis.legend(loc="lower center", ncol=3, fontsize="small", frameon=False)
