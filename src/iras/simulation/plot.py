"""The chart of `iras simulate --plot`: the fleet over time and each image's latency.

matplotlib is optional (`pip install 'iras[bench]'`); this module is imported only when a
chart is asked for, and draws with the Agg backend (no display needed). A trace of 100k
images is drawn from an even sample of at most `LATENCY_POINTS` images per policy: the
chart stays readable and takes a second, not a minute.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from pathlib import Path

from iras.simulation.types import Run

LATENCY_POINTS = 4000


def draw(path: Path, runs: Mapping[str, Run], title: str, latency_target_s: float) -> None:
    """Write a PNG: workers (ready + booting) over time on top, latency by arrival time
    below (log scale, the target as a dashed line), one colour per policy, up to the
    last answer (a policy that never answers some images says so in the legend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (fleet_axis, latency_axis) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    start_s = 0.0  # the trace's start, or the first launch before it (the oracle's)
    end_s = 0.0  # the last arrival or answer: a fleet left up for ever is cut there
    for name, run in runs.items():
        times = [t for t, _, _ in run.timeline]
        workers = [ready + booting for _, ready, booting in run.timeline]
        answers = [a + lat for a, lat in zip(run.arrivals, run.latencies_s, strict=True)]
        finite = [t for t in answers if math.isfinite(t)]
        end_s = max(end_s, run.arrivals[-1], *finite)
        start_s = min(start_s, *times)
        unanswered = len(answers) - len(finite)
        label = f"{name} ({unanswered} never answered)" if unanswered else name
        (line,) = fleet_axis.step(times, workers, where="post", label=label, linewidth=1.2)
        step = max(1, len(run.arrivals) // LATENCY_POINTS)
        sample = [i for i in range(0, len(run.arrivals), step) if math.isfinite(run.latencies_s[i])]
        latency_axis.scatter(
            [run.arrivals[i] for i in sample],
            [run.latencies_s[i] for i in sample],
            s=4,
            color=line.get_color(),
            label=name,
        )
    margin_s = (end_s - start_s) * 0.02
    fleet_axis.set_xlim(start_s - margin_s, end_s + margin_s)
    fleet_axis.set_ylabel("workers (ready + booting)")
    fleet_axis.set_title("\n".join(textwrap.wrap(title, 110)), fontsize=10)
    fleet_axis.grid(alpha=0.3)
    fleet_axis.legend(loc="upper right")
    latency_axis.axhline(latency_target_s, color="grey", linestyle="--", linewidth=1)
    latency_axis.set_yscale("log")
    latency_axis.set_ylabel("latency (s, log)")
    latency_axis.set_xlabel("seconds since the trace began")
    latency_axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
