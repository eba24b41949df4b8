"""The worker's stage timings: what its results carry, and its own Prometheus port
(`IRAS_WORKER_METRICS_PORT`), publish included."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from iras.aws import AwsClients
from iras.bench.serve_process import free_port
from iras.config import Settings
from iras.infra.provision import Resources
from iras.messages import Result
from iras.model import Classifier
from iras.worker.metrics import BatchIds, WorkerMetrics, serve_metrics
from iras.worker.worker import ExitReason
from tests.support import collect_results, image_bytes, submit, wait_until
from tests.worker.test_worker import make_worker
from tests.worker.test_worker_process import start_worker, wait_exit

#: Per-batch stages and the per-image one, on the worker's port.
BATCH_STAGES = ("download", "decode", "inference_batch", "publish")


def samples(text: str) -> dict[tuple[str, str], float]:
    """Prometheus text -> {(sample name, its stage label or ""): value}."""
    return {
        (sample.name, sample.labels.get("stage", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if "le" not in sample.labels
    }


async def scrape(port: int) -> dict[tuple[str, str], float]:
    async with httpx.AsyncClient() as http:
        return samples((await http.get(f"http://127.0.0.1:{port}/metrics")).text)


def batches_of(results: list[Result]) -> Counter[float]:
    """Images per batch, by the batch id the results carry."""
    return Counter(result.timings["batch_id"] for result in results)


def check_worker_figures(figures: dict[tuple[str, str], float], results: list[Result]) -> None:
    """Each per-batch stage counted once per batch, inference per image once per image."""
    batches = batches_of(results)
    for stage in BATCH_STAGES:
        assert figures["iras_worker_stage_seconds_count", stage] == len(batches), stage
        assert figures["iras_worker_stage_seconds_sum", stage] > 0, stage
    assert figures["iras_worker_stage_seconds_count", "inference_image"] == len(results)
    assert figures["iras_worker_batch_size_count", ""] == len(batches)
    assert figures["iras_worker_batch_size_sum", ""] == len(results)


async def test_results_carry_decode_and_forward_times_and_their_batch(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
) -> None:
    settings = settings.model_copy(update={"batch_size": 2})
    images = {f"m{i}.jpg": image_bytes(seed=i) for i in range(5)}
    await submit(aws, settings, resources, images, reply_queue)
    worker = make_worker(settings, aws, classifier, resources, "metrics-worker", burst=True)
    run = asyncio.create_task(worker.run())
    results = await collect_results(aws, reply_queue, len(images))
    assert await asyncio.wait_for(run, 30) is ExitReason.EMPTY

    batches = batches_of(results)
    assert len(batches) == worker.batches_done and max(batches.values()) <= 2
    for result in results:
        timings = result.timings
        assert timings["batch_size"] == batches[timings["batch_id"]]
        assert timings["decode_ms"] > 0 and timings["inference_ms"] > 0
        assert timings["queue_ms"] >= 0 and timings["download_ms"] > 0
    # The burst ended with every publish done: the port's figures are final.
    server = serve_metrics(worker.metrics.registry, free_port())
    assert server is not None
    try:
        check_worker_figures(await scrape(server.port), results)
    finally:
        server.close()


async def test_iras_worker_serves_its_metrics_port_when_set(
    settings: Settings, aws: AwsClients, resources: Resources, reply_queue: str
) -> None:
    port = free_port()
    images = {f"p{i}.jpg": image_bytes(seed=i) for i in range(3)}
    await submit(aws, settings, resources, images, reply_queue)
    worker = start_worker(
        settings, IRAS_WORKER_METRICS_PORT=str(port), IRAS_IDLE_EXIT_S="0", IRAS_BATCH_SIZE="2"
    )
    try:
        results = await collect_results(aws, reply_queue, len(images))
        batches = len(batches_of(results))

        async def published() -> bool:  # publishing ends after the results arrive
            figures = await scrape(port)
            return figures["iras_worker_stage_seconds_count", "publish"] == batches

        await wait_until(published, timeout_s=20)
        check_worker_figures(await scrape(port), results)
        worker.send_signal(signal.SIGTERM)
        assert await wait_exit(worker) == 0
    finally:
        worker.kill()


def test_no_port_by_default_and_a_taken_port_is_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = WorkerMetrics().registry
    assert serve_metrics(registry, 0) is None
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        with caplog.at_level(logging.WARNING, logger="iras.worker.metrics"):
            assert serve_metrics(registry, taken.getsockname()[1]) is None
    assert "not served" in caplog.text


def test_batch_ids_grow_even_within_one_microsecond() -> None:
    ids = BatchIds()
    drawn = [ids.next() for _ in range(1000)]
    assert drawn == sorted(set(drawn))
    assert all(value == int(value) < 2**53 for value in drawn)
    assert BatchIds().next() >= drawn[0]  # a restarted worker does not repeat its ids
