"""Prometheus metrics of one gateway, in a registry of its own (one app, one registry).

Names start with `iras_`. Latencies are histograms with buckets from 5 ms to 2 minutes:
a warm answer takes tens of milliseconds, a cold fleet several seconds.

The stages of a request (`iras_stage_seconds`, `iras_batch_size`) come from the timings
each result carries: the gateway is the one scrape target that sees every worker's
results (`iras.worker.metrics` says why workers are not scraped for them). Per-request
stages (queue, inference per image, end to end) are observed once per result; per-batch
stages (download, decode, inference of the batch, batch size) once per batch, the first
time one of its results arrives (`FirstSeen`, keyed by worker and `batch_id`). A batch
whose requests came from several gateways is counted by each of them.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iras.telemetry.buckets import BATCH_SIZE_BUCKETS, STAGE_BUCKETS_S

if TYPE_CHECKING:
    from iras.web.upload_budget import BudgetLedger

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

#: `iras_stage_seconds`'s stages observed once per result, from the result's timings.
PER_REQUEST_STAGES = {"queue": "queue_ms"}
#: Those observed once per batch: stage -> its key in the timings.
PER_BATCH_STAGES = {
    "download": "download_ms",
    "decode": "decode_ms",
    "inference_batch": "inference_ms",
}
#: Every stage, as the dashboard queries them (`deploy/grafana/iras-dashboard.json`).
STAGES = ("queue", "download", "decode", "inference_batch", "inference_image", "end_to_end")
#: Batches remembered to count each batch's stages once: far more than are ever in flight.
BATCHES_REMEMBERED = 4096


class FirstSeen:
    """Which keys came before, of the last `capacity` keys: a batch's results come
    together (one SendMessageBatch), so a short memory is enough to count it once."""

    def __init__(self, capacity: int = BATCHES_REMEMBERED) -> None:
        self._capacity = capacity
        self._keys: OrderedDict[Hashable, None] = OrderedDict()

    def first(self, key: Hashable) -> bool:
        """True the first time `key` comes (within memory), False after."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._capacity:
            self._keys.popitem(last=False)
        return True


def timing_s(timings: Mapping[str, Any], key: str) -> float | None:
    """The milliseconds at `key` in seconds; None when absent or not a sane figure (the
    result comes from a worker: its timings are read, never trusted to be well formed)."""
    value = timings.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value / 1000.0


class GatewayMetrics:
    """The gateway's counters, gauges and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "iras_http_requests", "HTTP requests answered", ["route", "status"], registry=r
        )
        self.http_latency = Histogram(
            "iras_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["route"],
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.images_accepted = Counter(
            "iras_images_accepted", "Images stored and queued for classification", registry=r
        )
        self.uploads_rejected = Counter(
            "iras_uploads_rejected", "Uploads refused, by reason", ["reason"], registry=r
        )
        self.results = Counter(
            "iras_results", "Results received from workers", ["outcome"], registry=r
        )
        self.cached_answers = Counter(
            "iras_cached_answers",
            "Requests answered by the result cache, not the fleet: from an entry (cache) or "
            "from the result of an upload of the same image in flight (flight)",
            ["source"],
            registry=r,
        )
        self.unmatched_results = Counter(
            "iras_unmatched_results",
            "Results received again and ignored: duplicates (SQS delivers at least once)",
            registry=r,
        )
        self.drained_results = Counter(
            "iras_drained_results",
            "Results for jobs this gateway does not know, taken off its reply queue: sent to it "
            "before a restart (same IRAS_GATEWAY_ID) or for jobs it has forgotten; their "
            "results are read from the output bucket",
            registry=r,
        )
        self.result_latency = Histogram(
            "iras_result_latency_seconds",
            "Time from queuing a request to its result reaching the gateway",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.stage_seconds = Histogram(
            "iras_stage_seconds",
            "Time in each stage, from the timings results carry: per request queue (sent to "
            "received by a worker), inference_image and end_to_end (as the gateway sees it); "
            "per batch download, decode (and preprocessing) and inference_batch (forward pass)",
            ["stage"],
            buckets=STAGE_BUCKETS_S,
            registry=r,
        )
        for stage in STAGES:  # every stage on /metrics from the start, at zero
            self.stage_seconds.labels(stage)
        self.batch_size = Histogram(
            "iras_batch_size",
            "Images classified together in one batch (observed once per batch)",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self._batches_seen = FirstSeen()
        self.wait_timeouts = Counter(
            "iras_wait_timeouts", "Waiting requests answered 504 (result still to come)", registry=r
        )
        self.queue_messages = Gauge(
            "iras_queue_messages",
            "Messages in a queue, by queue and state (visible, in_flight)",
            ["queue", "state"],
            registry=r,
        )
        self.workers = Gauge(
            "iras_workers", "Worker instances, by state (running, starting)", ["state"], registry=r
        )
        self.workers_desired = Gauge(
            "iras_workers_desired", "Workers the autoscaler wants", registry=r
        )
        self.workers_max = Gauge("iras_workers_max", "The autoscaler's cap", registry=r)
        self.scaler_leader = Gauge(
            "iras_scaler_leader",
            "1 while this gateway's autoscaler holds the scaler's lease (sizes the fleet), else 0",
            registry=r,
        )
        self.workers_replaced = Gauge(
            "iras_workers_replaced",
            "Instances this gateway terminated because their worker's heartbeat stopped",
            registry=r,
        )
        self.worker_rate = Gauge(
            "iras_worker_rate_images_per_second",
            "Images one worker classifies per second of busy time, by source (configured: "
            "IRAS_WORKER_RATE_IPS; measured: the median of what workers report)",
            ["source"],
            registry=r,
        )
        self.worker_boot = Gauge(
            "iras_worker_boot_seconds",
            "An instance's time from launch to its worker taking work, by source "
            "(configured: IRAS_WORKER_BOOT_S; measured: the median of recent launches)",
            ["source"],
            registry=r,
        )
        self.instance_seconds = Gauge(
            "iras_instance_seconds",
            "Worker instance-seconds billed so far (each launch's billing minimum included) "
            "since this gateway started",
            registry=r,
        )
        self.cost = Gauge(
            "iras_cost_dollars",
            "Estimated cost of the worker instances so far, in USD (absent when the price "
            "of the instance type is unknown: set IRAS_PRICE_PER_HOUR)",
            registry=r,
        )
        self.scale_events = Counter(
            "iras_scale_events",
            "Times the autoscaler changed the fleet's size, by direction (out, in)",
            ["direction"],
            registry=r,
        )
        self.websockets = Gauge(
            "iras_websocket_connections", "Open WebSocket subscriptions", registry=r
        )
        self.jobs_in_memory = Gauge(
            "iras_jobs_in_memory",
            "Jobs the gateway keeps in memory (IRAS_MAX_JOBS_IN_MEMORY, passed only by jobs "
            "waited on or followed; answered course uploads are not kept)",
            registry=r,
        )

        self.upload_bytes_in_flight = Gauge(
            "iras_upload_bytes_in_flight",
            "Upload bytes the gateway holds now, being read, checked and stored "
            "(IRAS_UPLOAD_BUDGET_BYTES bounds it)",
            registry=r,
        )
        self.upload_bytes_high_water = Gauge(
            "iras_upload_bytes_high_water",
            "The most upload bytes the gateway has held at once since it started",
            registry=r,
        )
        self.uploads_waiting_for_budget = Gauge(
            "iras_uploads_waiting_for_budget",
            "Uploads waiting for room in IRAS_UPLOAD_BUDGET_BYTES (up to 1.5 s, then 503)",
            registry=r,
        )

    def observe_result(self, result: Mapping[str, Any], end_to_end_s: float) -> None:
        """A result delivered to its job (a first delivery, not a duplicate): its outcome,
        its latency and its stages."""
        self.results.labels("error" if "error" in result else "ok").inc()
        self.result_latency.observe(end_to_end_s)
        stage = self.stage_seconds
        stage.labels("end_to_end").observe(end_to_end_s)
        timings = result.get("timings")
        if not isinstance(timings, Mapping):
            return
        for name, key in PER_REQUEST_STAGES.items():
            if (seconds := timing_s(timings, key)) is not None:
                stage.labels(name).observe(seconds)
        inference_s, size = timing_s(timings, "inference_ms"), timings.get("batch_size")
        if not isinstance(size, int | float) or not 1 <= size <= 1_000_000:
            return
        if inference_s is not None:
            stage.labels("inference_image").observe(inference_s / size)
        batch_id = timings.get("batch_id")
        if batch_id is None or not self._batches_seen.first((str(result.get("worker")), batch_id)):
            return  # no id: a worker from before batch ids, whose batches cannot be told apart
        for name, key in PER_BATCH_STAGES.items():
            if (seconds := timing_s(timings, key)) is not None:
                stage.labels(name).observe(seconds)
        self.batch_size.observe(size)

    def observe_upload_budget(self, ledger: BudgetLedger) -> None:
        """Read the upload budget's figures at scrape time."""
        self.upload_bytes_in_flight.set_function(lambda: ledger.in_flight_bytes)
        self.upload_bytes_high_water.set_function(lambda: ledger.high_water_bytes)
        self.uploads_waiting_for_budget.set_function(lambda: ledger.waiting)

    def observe_scaler(self, snapshot: dict[str, Any]) -> None:
        """Copy the autoscaler's latest figures into the gauges (at scrape time)."""
        self.workers.labels("running").set(snapshot["workers"])
        self.workers.labels("starting").set(snapshot["starting"])
        self.workers_desired.set(snapshot["desired"])
        self.workers_max.set(snapshot["max_workers"])
        self.scaler_leader.set(1 if snapshot["leader"] else 0)
        self.workers_replaced.set(snapshot["replaced"])
        for gauge, figure in (
            (self.worker_rate, snapshot["capacity"]["worker_rate_ips"]),
            (self.worker_boot, snapshot["capacity"]["boot_s"]),
        ):
            gauge.labels("configured").set(figure["configured"])
            if figure["measured"] is not None:
                gauge.labels("measured").set(figure["measured"])
        self.instance_seconds.set(snapshot["instance_seconds"])
        if snapshot["cost"] is not None:
            self.cost.set(snapshot["cost"])


class RequestMetrics:
    """Count and time HTTP requests by route: a plain ASGI middleware.

    Not `@app.middleware("http")`: Starlette runs such a middleware's `call_next` in a
    task group with memory streams between the halves, about 5% of the gateway's CPU per
    upload for two clock reads.
    """

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an error escaped every handler

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            path = getattr(scope.get("route"), "path", "other")  # set by the router
            self.metrics.http_requests.labels(path, str(status)).inc()
            self.metrics.http_latency.labels(path).observe(time.perf_counter() - started)
