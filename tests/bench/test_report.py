"""The report's figures, its JSON shape and its table."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from iras.bench.labels import Accuracy
from iras.bench.report import BenchReport, Outcome, fleet_during, fleet_summary, render

#: A result's timings: 100 ms queued, 50 downloading, 40 decoding, 210 in the forward pass.
TIMINGS = {"queue_ms": 100.0, "download_ms": 50.0, "decode_ms": 40.0, "inference_ms": 210.0}


def outcomes() -> list[Outcome]:
    return [
        Outcome("a.jpg", done_s=0.5, latency_s=0.5, label="tench", timings=TIMINGS),
        Outcome("b.jpg", done_s=1.0, latency_s=0.9, label="goldfish", timings=TIMINGS),
        Outcome("c.txt", done_s=1.1, latency_s=0.1, error="not an image", timings=TIMINGS),
        Outcome("d.jpg", done_s=2.0, latency_s=1.3, label="tench"),  # answered without timings
    ]


def service_report() -> BenchReport:
    return BenchReport(
        mode="service",
        target="http://127.0.0.1:8000",
        wall_s=2.0,
        outcomes=outcomes(),
        endpoint="upload",
        concurrency=2,
        cpu_s={"gateway": 0.2, "worker": 0.6, "aws": 0.4, "other": 0.0},
        accuracy=Accuracy(correct=2, labelled=3),
    )


def test_figures() -> None:
    report = service_report()
    assert (report.count, report.errors) == (4, 1)
    assert report.throughput_ips == 1.5  # 3 answered in 2 s; the failure does not count
    per_image = report.cpu_s_per_image()
    assert per_image is not None
    assert per_image["worker"] == 0.15
    assert per_image["iras"] == pytest.approx((0.2 + 0.6) / 4)  # gateway and workers, not the AWS
    assert per_image["total"] == pytest.approx(1.2 / 4)


def test_json_shape() -> None:
    figures = json.loads(json.dumps(service_report().to_json()))
    assert figures["count"] == 4 and figures["ok"] == 3 and figures["errors"] == 1
    assert figures["error_samples"] == ["c.txt: not an image"]
    latency = figures["latency_ms"]
    assert latency["min"] <= latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert latency["p50"] == 700.0  # halfway between 500 and 900
    assert figures["accuracy"] == {"top1": 2 / 3, "correct": 2, "labelled": 3}
    assert figures["cpu_s"]["aws"] == 0.4
    assert figures["fleet"] is None
    # a.jpg and b.jpg split (the failure is no answer, d.jpg has no timings): rest is
    # 500 - 400 = 100 and 900 - 400 = 500 ms, of 1400 ms end to end in all.
    assert list(figures["stages"]) == ["queue", "download", "decode", "inference", "rest"]
    assert figures["stages"]["rest"] == {
        "p50_ms": 300.0, "p95_ms": 480.0, "mean_ms": 300.0, "share": round(600 / 1400, 3),
    }  # fmt: skip
    assert figures["stages"]["inference"]["share"] == 0.3  # 420 of 1400
    assert figures["stage_counts"] == {
        "split": 2, "clamped": 0, "without_timings": 1, "decode_in_inference": 0,
    }  # fmt: skip


def test_no_timings_no_stages() -> None:
    report = BenchReport(
        mode="service", target="http://127.0.0.1:8000", wall_s=1.0,
        outcomes=[Outcome("a.jpg", done_s=0.5, latency_s=0.5, label="tench")],
    )  # fmt: skip
    figures = report.to_json()
    assert (figures["stages"], figures["stage_counts"]) == (None, None)
    assert "stage" not in table_text(report)


def test_model_report_has_no_iras_roles() -> None:
    report = BenchReport(
        mode="model", target="efficientnet_lite0", wall_s=1.0, outcomes=outcomes(),
        batch_size=8, cpu_s={"model": 0.8},
    )  # fmt: skip
    assert report.cpu_s_per_image() == {"model": 0.2, "total": 0.2}


def table_text(report: BenchReport) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    with console.capture() as capture:
        console.print(render(report))
    return capture.get()


def test_table_shows_every_figure() -> None:
    text = table_text(service_report())
    for expected in (
        "1.5 images/s",
        "p50 700 ms",
        "1: c.txt: not an image",
        "CPU/image worker",
        "150.0 ms",
        "CPU/image iras",
        "0.667 (2/3 labelled)",
        "stage queue",
        "p50 100 ms, p95 100 ms, 14% of the mean",  # 200 of 1400 ms
        "stage rest",
        "p50 300 ms, p95 480 ms, 43% of the mean",
        "2 answers split by their timings, mean end to end 700 ms",
        "1 without timings left out",
    ):
        assert expected in text
    assert "CPU/image other" not in text  # a role that spent nothing is left out


def test_fleet_from_the_timeline_of_the_run() -> None:
    timeline = [
        {"t": 90.0, "workers": 5, "starting": 0, "backlog": 50},  # long before: left out
        {"t": 99.5, "workers": 0, "starting": 1, "backlog": 3},
        {"t": 103.0, "workers": 2, "starting": 0, "backlog": 8},
        {"t": 106.0, "workers": 0, "starting": 0, "backlog": 0},
    ]
    points = fleet_during(timeline, start_t=100.0, end_t=105.0)
    assert [p["t"] for p in points] == [99.5, 103.0, 106.0]
    fleet = fleet_summary(points)
    assert fleet is not None
    assert (fleet.peak_workers, fleet.peak_backlog, fleet.points) == (2, 8, 3)
    assert fleet_summary([]) is None
