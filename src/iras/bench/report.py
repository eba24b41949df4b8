"""The figures of one `iras bench` run, as one JSON object or a table for people."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from iras.bench.labels import Accuracy
from iras.bench.stages import REST, REST_MEANING, Breakdown, breakdown, split
from iras.bench.stats import LatencySummary, summarize

#: Roles whose CPU IRAS itself costs (the embedded AWS stands in for AWS's own services).
IRAS_ROLES = ("gateway", "worker")
#: Failure reasons kept in a report (the count has them all).
ERROR_SAMPLES = 5


@dataclass(frozen=True, slots=True)
class Outcome:
    """One image's trip: when it finished (seconds since the run began), how long it
    took, its label or the reason it failed, and the result's `timings` when the answer
    carried them (`/v1/classify` does, the course's `/upload` does not)."""

    name: str
    done_s: float
    latency_s: float
    label: str | None = None
    error: str | None = None
    timings: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Fleet:
    """The autoscaler's figures during the run, from `GET /v1/scaler`'s timeline."""

    peak_workers: int
    peak_backlog: int
    points: int


@dataclass
class BenchReport:
    mode: str  # "service" or "model"
    target: str  # the gateway URL, or the model name
    wall_s: float
    outcomes: Sequence[Outcome]
    endpoint: str | None = None
    concurrency: int | None = None
    batch_size: int | None = None
    cpu_s: dict[str, float] | None = None  # by role
    accuracy: Accuracy | None = None
    fleet: Fleet | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.outcomes)

    @property
    def errors(self) -> int:
        return sum(outcome.error is not None for outcome in self.outcomes)

    @property
    def throughput_ips(self) -> float:
        """Images answered with a label per second of wall time."""
        return (self.count - self.errors) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def latency(self) -> LatencySummary | None:
        return summarize(outcome.latency_s * 1000 for outcome in self.outcomes)

    @property
    def stages(self) -> Breakdown | None:
        """Where the answered images' time went, from their results' timings."""
        answered = (o for o in self.outcomes if o.error is None)
        return breakdown(split(o.latency_s * 1000, o.timings) for o in answered)

    def cpu_s_per_image(self) -> dict[str, float] | None:
        """CPU seconds per image sent, by role, plus `iras` (gateway and workers, the
        embedded AWS left out) and `total`."""
        if self.cpu_s is None or not self.count:
            return None
        per_image = {role: seconds / self.count for role, seconds in self.cpu_s.items()}
        if any(role in self.cpu_s for role in IRAS_ROLES):
            per_image["iras"] = sum(per_image.get(role, 0.0) for role in IRAS_ROLES)
        per_image["total"] = sum(self.cpu_s.values()) / self.count
        return per_image

    def to_json(self) -> dict[str, Any]:
        latency = self.latency
        accuracy = self.accuracy
        stages = self.stages
        return {
            "mode": self.mode,
            "target": self.target,
            "endpoint": self.endpoint,
            "count": self.count,
            "ok": self.count - self.errors,
            "errors": self.errors,
            "error_samples": self.error_samples(),
            "concurrency": self.concurrency,
            "batch_size": self.batch_size,
            "wall_s": round(self.wall_s, 3),
            "throughput_ips": round(self.throughput_ips, 2),
            "latency_ms": None
            if latency is None
            else {
                "min": round(latency.min_ms, 1),
                "p50": round(latency.p50_ms, 1),
                "p95": round(latency.p95_ms, 1),
                "p99": round(latency.p99_ms, 1),
                "max": round(latency.max_ms, 1),
                "mean": round(latency.mean_ms, 1),
            },
            "stages": None if stages is None else stages.to_json(),
            "stage_counts": None if stages is None else stages.counts_json(),
            "cpu_s": _rounded(self.cpu_s, 3),
            "cpu_s_per_image": _rounded(self.cpu_s_per_image(), 5),
            "accuracy": None
            if accuracy is None
            else {
                "top1": accuracy.top1,
                "correct": accuracy.correct,
                "labelled": accuracy.labelled,
            },
            "fleet": None
            if self.fleet is None
            else {
                "peak_workers": self.fleet.peak_workers,
                "peak_backlog": self.fleet.peak_backlog,
                "points": self.fleet.points,
            },
            "notes": self.notes,
        }

    def error_samples(self) -> list[str]:
        failed = [o for o in self.outcomes if o.error is not None]
        return [f"{o.name}: {o.error}" for o in failed[:ERROR_SAMPLES]]


def render(report: BenchReport) -> Table:
    """The report as a two-column table."""
    title = f"iras bench: {report.mode} {report.target}"
    if report.endpoint:
        title += f" ({report.endpoint})"
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("figure", style="bold")
    table.add_column("value")
    shape = (
        f"concurrency {report.concurrency}"
        if report.concurrency is not None
        else f"batch size {report.batch_size}"
    )
    table.add_row("images", f"{report.count} ({shape})")
    table.add_row("wall time", f"{report.wall_s:.2f} s")
    table.add_row("throughput", f"{report.throughput_ips:.1f} images/s")
    latency = report.latency
    if latency is not None:
        table.add_row(
            "latency",
            f"p50 {latency.p50_ms:.0f} ms, p95 {latency.p95_ms:.0f} ms, "
            f"p99 {latency.p99_ms:.0f} ms (min {latency.min_ms:.0f}, max {latency.max_ms:.0f})",
        )
    table.add_row("errors", _errors_text(report))
    for figure, value in stage_rows(report.stages):
        table.add_row(figure, value)
    per_image = report.cpu_s_per_image()
    if per_image is not None:
        for role, seconds in per_image.items():
            if seconds or role in ("iras", "total"):  # roles that did nothing are left out
                table.add_row(f"CPU/image {role}", f"{seconds * 1000:.1f} ms")
    if report.accuracy is not None:
        top1 = report.accuracy.top1
        shown = "n/a" if top1 is None else f"{top1:.3f}"
        table.add_row(
            "top-1", f"{shown} ({report.accuracy.correct}/{report.accuracy.labelled} labelled)"
        )
    if report.fleet is not None:
        table.add_row(
            "fleet",
            f"peak {report.fleet.peak_workers} workers, peak backlog {report.fleet.peak_backlog}",
        )
    for note in report.notes:
        table.add_row("note", note)
    return table


def stage_rows(stages: Breakdown | None) -> list[tuple[str, str]]:
    """Table rows of the latency breakdown: one per stage, then what the split covers."""
    if stages is None:
        return []
    rows = [
        (
            f"stage {stage}",
            f"p50 {figures.p50_ms:.0f} ms, p95 {figures.p95_ms:.0f} ms, "
            f"{figures.share:.0%} of the mean",
        )
        for stage, figures in stages.stages.items()
    ]
    covered = (
        f"{stages.end_to_end.count} answers split by their timings, mean end to end "
        f"{stages.end_to_end.mean_ms:.0f} ms; {REST} is {REST_MEANING}"
    )
    for count, what in (
        (stages.without_timings, "without timings left out"),
        (stages.clamped, f"with {REST} clamped to 0 (stages over end to end)"),
        (stages.decode_in_inference, "from workers that decode inside inference"),
    ):
        if count:
            covered += f"; {count} {what}"
    rows.append(("stages", covered))
    return rows


def _errors_text(report: BenchReport) -> str:
    if not report.errors:
        return "0"
    return f"{report.errors}: " + "; ".join(report.error_samples())


def _rounded(values: dict[str, float] | None, digits: int) -> dict[str, float] | None:
    return None if values is None else {key: round(value, digits) for key, value in values.items()}


def fleet_during(
    timeline: Sequence[dict[str, Any]], start_t: float, end_t: float, slack_s: float = 1.0
) -> list[dict[str, Any]]:
    """The points of `/v1/scaler`'s timeline (wall-clock `t`) that fall within the run."""
    return [p for p in timeline if start_t - slack_s <= float(p["t"]) <= end_t + slack_s]


def fleet_summary(points: Sequence[dict[str, Any]]) -> Fleet | None:
    """Peak fleet (running and starting workers) and peak backlog of the points."""
    if not points:
        return None
    return Fleet(
        peak_workers=max(int(p["workers"]) + int(p.get("starting", 0)) for p in points),
        peak_backlog=max(int(p["backlog"]) for p in points),
        points=len(points),
    )
