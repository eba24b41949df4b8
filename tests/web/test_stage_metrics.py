"""Per-stage metrics at the gateway (`iras_stage_seconds`, `iras_batch_size`), made from
the timings results carry, and the Grafana dashboard that queries them."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from iras.bench.serve_process import free_port
from iras.config import Settings
from iras.web.metrics import PER_BATCH_STAGES, STAGES, GatewayMetrics
from iras.worker.metrics import WorkerMetrics, serve_metrics
from tests.support import image_bytes, wait_until
from tests.web.conftest import Service

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "iras-dashboard.json"
#: What a family of each type is queried as in PromQL.
SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",), "gauge": ("",)}


@pytest.fixture
def gateway_settings(gateway_settings: Settings) -> Settings:
    """Batches of two, so that five images make several batches."""
    return gateway_settings.model_copy(update={"batch_size": 2})


def counts(text: str, metric: str, suffix: str = "_count") -> dict[str, float]:
    """`<metric><suffix>` by stage label ("" for none), from Prometheus text."""
    return {
        sample.labels.get("stage", ""): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == f"{metric}{suffix}"
    }


def queryable_names(text: str) -> set[str]:
    """Every series name a PromQL query can use on this exposition, samples or not."""
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in SUFFIXES.get(family.type, ("",))
    }


async def classify(service: Service, count: int) -> list[dict[str, Any]]:
    files = [("files", (f"s{i}.jpg", image_bytes(seed=60 + i))) for i in range(count)]
    response = await service.http.post("/v1/classify?wait=true", files=files)
    assert response.status_code == 200
    return [entry["result"] for entry in response.json()["requests"]]


async def test_each_stage_is_counted_per_request_or_per_batch(service: Service) -> None:
    results = await classify(service, 5)
    batches = Counter(result["timings"]["batch_id"] for result in results)
    assert len(batches) >= 3  # five images, two at most per batch
    for result in results:
        timings = result["timings"]
        assert timings["decode_ms"] > 0 and timings["inference_ms"] > 0
        assert timings["batch_size"] == batches[timings["batch_id"]]

    text = (await service.http.get("/metrics")).text
    stage_counts = counts(text, "iras_stage_seconds")
    per_request = {stage: len(results) for stage in ("queue", "inference_image", "end_to_end")}
    per_batch = {stage: len(batches) for stage in PER_BATCH_STAGES}
    assert stage_counts == per_request | per_batch
    assert counts(text, "iras_batch_size") == {"": len(batches)}
    assert counts(text, "iras_batch_size", "_sum") == {"": len(results)}
    # The forward passes are those the results report, once per batch.
    forward_ms = {r["timings"]["batch_id"]: r["timings"]["inference_ms"] for r in results}
    sums = counts(text, "iras_stage_seconds", "_sum")
    assert sums["inference_batch"] == pytest.approx(sum(forward_ms.values()) / 1000)

    assert service.worker is not None  # the worker's own port shows its publishing
    port = serve_metrics(service.worker.metrics.registry, free_port())
    assert port is not None
    try:

        async def all_published() -> bool:
            text = (await service.http.get(f"http://127.0.0.1:{port.port}/metrics")).text
            return counts(text, "iras_worker_stage_seconds").get("publish") == len(batches)

        await wait_until(all_published, timeout_s=10)
    finally:
        port.close()


def a_result(worker: str = "w1", **timings: Any) -> dict[str, Any]:
    return {"request_id": "r", "job_id": "j", "worker": worker, "label": "x", "timings": timings}


def stage_counts(metrics: GatewayMetrics) -> dict[str, float]:
    """The stages observed at least once (every stage is on /metrics from the start)."""
    text = generate_latest(metrics.registry).decode()
    return {stage: n for stage, n in counts(text, "iras_stage_seconds").items() if n}


BATCH = {"queue_ms": 5.0, "download_ms": 7.0, "decode_ms": 9.0, "inference_ms": 20.0}


def test_a_batch_is_counted_once_however_many_results_it_has() -> None:
    metrics = GatewayMetrics()
    for _ in range(3):  # three images of one batch
        metrics.observe_result(a_result(**BATCH, batch_size=3, batch_id=1.0), 0.1)
    metrics.observe_result(a_result("w2", **BATCH, batch_size=1, batch_id=1.0), 0.1)  # another
    assert stage_counts(metrics) == {
        "queue": 4,
        "inference_image": 4,
        "end_to_end": 4,
        "download": 2,
        "decode": 2,
        "inference_batch": 2,
    }
    text = generate_latest(metrics.registry).decode()
    assert "iras_batch_size_count 2.0" in text and "iras_batch_size_sum 4.0" in text
    # per image: 20 ms over three images, three times, and 20 ms over one
    sums = counts(text, "iras_stage_seconds", "_sum")
    assert sums["inference_image"] == pytest.approx(0.04)


@pytest.mark.parametrize(
    ("timings", "expected"),
    [
        # a worker from before batch ids: per-request stages only
        ({**BATCH, "batch_size": 2}, {"queue": 1, "inference_image": 1}),
        # a result with no timings (an input gone from the bucket): end to end only
        ({}, {}),
        # figures that are not figures are skipped, each on its own
        (
            {
                "queue_ms": "soon",
                "download_ms": -1,
                "inference_ms": float("nan"),
                "batch_size": 2,
                "batch_id": 7.0,
                "decode_ms": True,
            },
            {},
        ),
        # a batch size out of range: no per-image or per-batch stage
        ({**BATCH, "batch_size": 0, "batch_id": 8.0}, {"queue": 1}),
    ],
)
def test_timings_that_are_missing_or_odd_are_skipped(
    timings: dict[str, Any], expected: dict[str, int]
) -> None:
    metrics = GatewayMetrics()
    metrics.observe_result(a_result(**timings), 0.25)
    assert stage_counts(metrics) == {"end_to_end": 1, **expected}


def test_a_result_without_a_timings_mapping_counts_its_outcome() -> None:
    metrics = GatewayMetrics()
    metrics.observe_result({"request_id": "r", "error": "gone", "timings": None}, 0.5)
    text = generate_latest(metrics.registry).decode()
    assert 'iras_results_total{outcome="error"} 1.0' in text
    assert stage_counts(metrics) == {"end_to_end": 1}


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_uses_a_prometheus_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    [variable] = dashboard["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == f"${{{variable['name']}}}", panel["title"]
            assert panel["targets"], panel["title"]


async def test_every_metric_the_dashboard_queries_exists(service: Service) -> None:
    """A renamed metric breaks the dashboard silently in Grafana: here, loudly."""
    await classify(service, 1)
    exposed = queryable_names((await service.http.get("/metrics")).text)
    exposed |= queryable_names(generate_latest(WorkerMetrics().registry).decode())
    queried = {name for expr in dashboard_queries() for name in re.findall(r"\biras_\w+", expr)}
    assert queried - exposed == set()
    # What the issue asks the dashboard to show is among what it queries.
    assert {
        "iras_stage_seconds_bucket",
        "iras_batch_size_bucket",
        "iras_results_total",
        "iras_workers",
        "iras_workers_desired",
        "iras_queue_messages",
        "iras_worker_stage_seconds_bucket",
    } <= queried
    every_stage = " ".join(dashboard_queries())
    assert 'stage="publish"' in every_stage
    assert set(STAGES) <= set(
        counts((await service.http.get("/metrics")).text, "iras_stage_seconds")
    )
