"""`iras bench` against a real gateway, one it starts itself, and the bare model."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from iras.bench.procstat import read_tree
from iras.model import Classifier
from tests.cli.conftest import Iras, labels_of
from tests.web.conftest import Service


@pytest.fixture
def labels(images: Path, classifier: Classifier, tmp_path: Path) -> Path:
    """The model's own labels for red and green, a wrong one for blue."""
    found = labels_of(classifier, sorted(images.rglob("*.*")))
    found["blue.jpg"] = "not a label the model knows"
    path = tmp_path / "labels.csv"
    path.write_text("file,label\n" + "".join(f"{n},{label}\n" for n, label in found.items()))
    return path


def check_figures(figures: dict[str, Any], count: int) -> None:
    assert figures["count"] == count and figures["ok"] == count
    assert figures["errors"] == 0 and figures["error_samples"] == []
    latency = figures["latency_ms"]
    assert 0 < latency["min"] <= latency["p50"] <= latency["p95"] <= latency["p99"]
    assert latency["p99"] <= latency["max"]
    assert figures["throughput_ips"] > 0 and figures["wall_s"] > 0


async def test_against_a_gateway_with_labels_and_plot(
    service: Service, images: Path, labels: Path, iras: Iras, tmp_path: Path
) -> None:
    chart = tmp_path / "bench.png"
    ran = await iras(
        "bench", "--url", service.url, "--images", str(images), "--count", "7",
        "--concurrency", "3", "--labels", str(labels), "--plot", str(chart), "--json",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    figures = json.loads(ran.out)
    check_figures(figures, 7)
    assert (figures["mode"], figures["endpoint"], figures["concurrency"]) == (
        "service",
        "upload",
        3,
    )
    # green, blue, red, green, blue, red, green: blue is labelled wrong, twice.
    assert figures["accuracy"] == {"top1": 5 / 7, "correct": 5, "labelled": 7}
    assert figures["cpu_s"] is None  # not its process, and no --pid
    assert figures["fleet"] is None  # this gateway runs without the autoscaler
    assert any("GET /v1/scaler answered 404" in note for note in figures["notes"])
    assert figures["stages"] is None  # the course's answers carry no timings
    assert any("/upload answers carry no timings" in note for note in figures["notes"])
    assert chart.read_bytes().startswith(b"\x89PNG")


async def test_v1_endpoint_cpu_of_a_given_pid_and_stages(
    service: Service, images: Path, iras: Iras, tmp_path: Path
) -> None:
    # The gateway and its worker run in this very process: it is the tree to measure.
    chart = tmp_path / "stages.png"
    ran = await iras(
        "bench", "--url", service.url, "--images", str(images), "--endpoint", "v1",
        "--concurrency", "2", "--pid", str(os.getpid()), "--plot", str(chart), "--json",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    figures = json.loads(ran.out)
    check_figures(figures, 3)
    assert figures["endpoint"] == "v1"
    assert figures["cpu_s"]["gateway"] > 0
    assert figures["cpu_s_per_image"]["iras"] > 0
    assert figures["accuracy"] is None
    check_stages(figures, 3)
    assert chart.read_bytes().startswith(b"\x89PNG")


def check_stages(figures: dict[str, Any], count: int) -> None:
    """Every answer split into stages that add up to its end-to-end latency."""
    stages, counts = figures["stages"], figures["stage_counts"]
    assert counts["split"] == count and counts["without_timings"] == 0
    assert {"queue", "download", "inference", "rest"} <= set(stages)  # decode: newer workers
    assert set(stages) <= {"queue", "download", "decode", "inference", "rest"}
    for stage in stages.values():
        assert 0 <= stage["p50_ms"] <= stage["p95_ms"] and 0 <= stage["share"] <= 1
    assert stages["inference"]["p50_ms"] > 0 and stages["queue"]["p50_ms"] > 0
    assert counts["decode_in_inference"] in (0, count)  # one worker: all or none
    shares = sum(stage["share"] for stage in stages.values())
    means_ms = sum(stage["mean_ms"] for stage in stages.values())
    if counts["clamped"]:  # a rest clamped to 0 adds time no latency had
        assert shares > 1 and means_ms > figures["latency_ms"]["mean"]
    else:  # each figure is rounded: shares to 0.001, milliseconds to 0.1
        assert shares == pytest.approx(1.0, abs=0.005)
        assert means_ms == pytest.approx(figures["latency_ms"]["mean"], abs=0.5)


async def test_the_bare_model(
    images: Path, labels: Path, iras: Iras, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRAS_INFERENCE_THREADS", "1")
    ran = await iras(
        "bench", "--model-only", "--images", str(images), "--count", "5",
        "--batch-size", "2", "--labels", str(labels), "--json",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    figures = json.loads(ran.out)
    check_figures(figures, 5)
    assert (figures["mode"], figures["batch_size"]) == ("model", 2)
    assert figures["cpu_s"]["model"] > 0
    assert figures["accuracy"]["labelled"] == 5


@pytest.mark.slow
async def test_starts_and_stops_its_own_service(
    images: Path, iras: Iras, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("IRAS_ENDPOINT_URL", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)  # its own embedded AWS
    monkeypatch.setenv("IRAS_INFERENCE_THREADS", "1")
    monkeypatch.setenv("IRAS_RECEIVE_WAIT_S", "1")  # its workers stop within a second
    before = {s.key for s in read_tree(os.getpid())}  # the session's AWS may be a child
    ran = await iras(
        "bench", "--images", str(images), "--count", "6", "--concurrency", "3", "--warmup", "2"
    )
    assert ran.code == 0, ran.err
    assert "images/s" in ran.out and "CPU/image worker" in ran.out and "fleet" in ran.out
    left = [s for s in read_tree(os.getpid()) if s.key not in before]
    assert left == []  # serve, its workers and its AWS are gone


async def test_wrong_arguments_and_missing_matplotlib_are_exit_code_2(
    images: Path, iras: Iras, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = await iras("bench", "--images", str(images), "--pid", "1")
    assert ran.code == 2 and "--pid measures a running service: give its --url" in ran.err
    ran = await iras("bench", "--images", str(images), "--url", "http://127.0.0.1:1")
    assert ran.code == 2 and "cannot reach the gateway" in ran.err
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    ran = await iras(
        "bench", "--images", str(images), "--url", "http://127.0.0.1:1", "--plot", "x.png"
    )
    assert ran.code == 2 and "pip install 'iras[bench]'" in ran.err
