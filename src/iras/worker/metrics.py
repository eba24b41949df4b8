"""A worker's stage timings: how a batch's time is taken apart, and the worker's own
Prometheus histograms, served on an optional port (`IRAS_WORKER_METRICS_PORT`, 0 = off).

Two ways for the figures to reach Prometheus, and why both: every result carries its
batch's timings (`queue_ms`, `download_ms`, `decode_ms`, `inference_ms`, `batch_size`,
`batch_id`), and the gateway exports them as `iras_stage_seconds` and `iras_batch_size`
(`iras.web.metrics`). That is the main path, because workers are short-lived instances
whose addresses change with every scale-out: scraping them needs Prometheus's EC2
service discovery and a security group open to it, while the gateway is one fixed
scrape target that sees every result. Publishing happens after a result is made, so its
time cannot travel in the result: it is only here, on the worker's port, with the
worker's own view of the other stages (for one worker looked at alone, or a fleet
scraped through EC2 discovery). Locally, `iras serve`'s workers share one machine and
one port: the first takes it, the others log that it is taken and work on without one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Histogram, start_http_server

from iras.model.types import Outcome, TimedOutcomes
from iras.telemetry.buckets import BATCH_SIZE_BUCKETS, STAGE_BUCKETS_S

log = logging.getLogger(__name__)

#: The stages of `iras_worker_stage_seconds`.
WORKER_STAGES = ("download", "decode", "inference_batch", "inference_image", "publish")
#: Where the worker's port listens: Prometheus scrapes it from another machine.
ALL_INTERFACES = "0.0.0.0"


class Classifying(Protocol):
    """A model as the worker calls it (`iras.worker.worker.BatchClassifier`)."""

    def classify(self, blobs: Sequence[bytes], top_k: int = 5) -> list[Outcome]: ...


@dataclass(frozen=True, slots=True)
class BatchTimes:
    """Where one batch's classification went. `decode_s` is None for a model that does
    not report it (a test's wrapper): its `inference_s` is then the whole call."""

    outcomes: list[Outcome]
    decode_s: float | None
    inference_s: float
    whole_s: float


def classify_timed(classifier: Classifying, blobs: Sequence[bytes], top_k: int) -> BatchTimes:
    """Classify `blobs` (in the calling thread) and say where the time went: a model with
    `classify_timed` (`iras.model.Classifier`) tells decode from forward pass."""
    started = time.perf_counter()
    timed = getattr(classifier, "classify_timed", None)
    if timed is None:
        outcomes = classifier.classify(blobs, top_k)
        whole_s = time.perf_counter() - started
        return BatchTimes(outcomes, decode_s=None, inference_s=whole_s, whole_s=whole_s)
    staged: TimedOutcomes = timed(blobs, top_k)
    whole_s = time.perf_counter() - started
    return BatchTimes(staged.outcomes, staged.decode_s, staged.forward_s, whole_s)


def stage_timings(
    download_ms: float, times: BatchTimes, size: int, batch_id: float
) -> dict[str, float]:
    """The batch's part of each of its results' `timings` (the worker adds `queue_ms`
    per request): `inference_ms` is the forward pass alone, as the API documents it;
    before `decode_ms` existed it was the whole classify call, decode included."""
    timings = {
        "download_ms": round(download_ms, 1),
        "inference_ms": round(times.inference_s * 1000.0, 1),
        "batch_size": float(size),
        "batch_id": batch_id,
    }
    if times.decode_s is not None:
        timings["decode_ms"] = round(times.decode_s * 1000.0, 1)
    return timings


class BatchIds:
    """Ids that tell one batch's results from another's (`timings["batch_id"]`), so that
    the gateway counts a per-batch stage once per batch, not once per image.

    An id is the microsecond of the wall clock a batch was classified at, made to grow by
    at least one: unique among the batches of one worker name even across its restarts
    (a local worker's name, `app-tier-instance-N`, comes back after a scale-in), where a
    counter from 1 would repeat. Below 2**53, so exact as the JSON float it travels in.
    """

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> float:
        self._last = max(time.time_ns() // 1000, self._last + 1)
        return float(self._last)


class WorkerMetrics:
    """The worker's histograms, in a registry of its own (one worker, one registry)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.stage = Histogram(
            "iras_worker_stage_seconds",
            "Time a batch spent in each stage on this worker (download, decode, "
            "inference_batch, publish) and inference per image (inference_image)",
            ["stage"],
            buckets=STAGE_BUCKETS_S,
            registry=self.registry,
        )
        for stage in WORKER_STAGES:  # every stage on the port from the start, at zero
            self.stage.labels(stage)
        self.batch_size = Histogram(
            "iras_worker_batch_size",
            "Images in each batch this worker classified",
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )

    def observe_batch(self, download_s: float, times: BatchTimes, size: int) -> None:
        """A classified batch of `size` images: its stages once each, inference per image
        once per image, and its size."""
        self.stage.labels("download").observe(download_s)
        if times.decode_s is not None:
            self.stage.labels("decode").observe(times.decode_s)
        self.stage.labels("inference_batch").observe(times.inference_s)
        per_image = self.stage.labels("inference_image")
        for _ in range(size):  # once per image, as the gateway counts it
            per_image.observe(times.inference_s / size)
        self.batch_size.observe(size)

    def observe_publish(self, seconds: float) -> None:
        """A batch's results written and sent (output bucket, reply queues, deletes)."""
        self.stage.labels("publish").observe(seconds)


class MetricsServer:
    """`registry` in Prometheus's text format on `port` (all interfaces, for a scraper
    elsewhere in the VPC), from a daemon thread: a scrape never waits for the event loop."""

    def __init__(self, registry: CollectorRegistry, port: int, host: str = ALL_INTERFACES) -> None:
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.port: int = self._server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, port: int) -> MetricsServer | None:
    """Serve `registry` on `port` (0: not at all); a port already taken is logged, not
    fatal: a worker without its metrics port still works, and its results still carry
    every stage but publish to the gateway."""
    if port == 0:
        return None
    try:
        server = MetricsServer(registry, port)
    except OSError as error:
        log.warning("worker metrics port %d not served: %s", port, error)
        return None
    log.info("worker metrics on port %d (/metrics)", server.port)
    return server
