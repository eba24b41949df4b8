"""The gateway's long-lived parts and their life: connect, serve, stop.

Start-up never fails because AWS is briefly away: a connect task retries with backoff
until the request queue is found and this gateway's reply queue exists; until then
`/readyz` says why it is not ready and uploads get 503 with Retry-After. Stopping deletes
the reply queue (results meant for it are still written to the output bucket).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import uuid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from iras.aws import AwsClients
from iras.backoff import backoff_s
from iras.config import Settings
from iras.provision import find_queue_url
from iras.scaler.controller import Scaler
from iras.scaler.fleet import Ec2Fleet, FleetConfigError
from iras.scaler.local_runner import LocalInstanceRunner
from iras.sqs import queue_depth, send_batch
from iras.web.jobs import JobBook
from iras.web.metrics import GatewayMetrics
from iras.web.replies import create_reply_queue, delete_reply_queue, listen_for_replies
from iras.web.sender import BatchingSender
from iras.web.submit import Submitter

log = logging.getLogger(__name__)

#: How often queue depths are sampled for /metrics.
QUEUE_SAMPLE_PERIOD_S = 2.0


class Gateway:
    """Everything a request handler needs, built once per app."""

    def __init__(self, settings: Settings, aws: AwsClients, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.aws = aws
        self.metrics = metrics
        self.id = uuid.uuid4().hex[:12]
        self.book = JobBook(settings.max_jobs_in_memory, settings.job_ttl_s)
        self.ready = asyncio.Event()
        self.not_ready_reason = "connecting to AWS"
        self.request_queue_url: str | None = None
        self.dead_letter_queue_url: str | None = None
        self.reply_queue_url: str | None = None
        self.submitter: Submitter | None = None
        self.scaler: Scaler | None = None
        self._sender: BatchingSender | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def reply_queue_name(self) -> str:
        return f"{self.settings.reply_queue_prefix}-{self.id}"

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._connect(), name="gateway-connect"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._sender is not None:
            await self._sender.close()
        if self.scaler is not None:
            await self.scaler.shutdown()
        if self.reply_queue_url is not None:
            await delete_reply_queue(self.aws.sqs, self.reply_queue_url)

    async def _connect(self) -> None:
        attempt = 0
        while not self.ready.is_set():
            try:
                await self._try_connect()
            except (BotoCoreError, ClientError, LookupError) as error:
                attempt += 1
                self.not_ready_reason = str(error)
                delay_s = backoff_s(attempt, cap_s=5.0)
                log.warning("gateway not ready (%s); retrying in %.1f s", error, delay_s)
                await asyncio.sleep(delay_s)

    async def _try_connect(self) -> None:
        settings, sqs = self.settings, self.aws.sqs
        request_url = await find_queue_url(sqs, settings.request_queue)
        if request_url is None:
            raise LookupError(
                f"request queue {settings.request_queue!r} does not exist: run `iras provision`"
            )
        self.request_queue_url = request_url
        self.dead_letter_queue_url = await find_queue_url(sqs, settings.dead_letter_queue)
        reply_url = await create_reply_queue(sqs, self.reply_queue_name, settings.receive_wait_s)
        self.reply_queue_url = reply_url
        self._sender = BatchingSender(
            functools.partial(send_batch, sqs, request_url),
            settings.send_batch_wait_ms / 1000.0,
            companions=lambda: self.submitter.storing if self.submitter else 0,
        )
        self.submitter = Submitter(
            settings, self.aws, self.book, self._sender, reply_url, on_submit=self._on_submit
        )
        if settings.autoscaler:
            fleet = Ec2Fleet(self.aws.ec2, settings)
            runner = LocalInstanceRunner(fleet, os.environ) if settings.local_instances else None
            submitter = self.submitter
            self.scaler = Scaler(
                settings, sqs, request_url, fleet, runner, arriving=lambda: submitter.arriving
            )
            # One look before ready: /v1/scaler's timeline starts from the fleet as found,
            # not from whatever the first uploads have already set in motion.
            with contextlib.suppress(FleetConfigError):  # the scaler's loop reports it
                await self.scaler.step()
            self._tasks.append(asyncio.create_task(self.scaler.run(), name="scaler"))
        self._tasks.append(
            asyncio.create_task(
                listen_for_replies(sqs, reply_url, settings.receive_wait_s, self._deliver),
                name="reply-listener",
            )
        )
        self._tasks.append(asyncio.create_task(self._sample_queues(), name="queue-sampler"))
        self.ready.set()
        log.info("gateway %s ready: requests to %s, replies on %s", self.id, request_url, reply_url)

    def _on_submit(self, count: int) -> None:
        self.metrics.images_accepted.inc(count)
        if self.scaler is not None:
            self.scaler.nudge()

    def _deliver(self, result: dict[str, Any]) -> None:
        job = self.book.deliver(result)
        if job is None:
            self.metrics.unmatched_results.inc()
            return
        self.metrics.results.labels("error" if "error" in result else "ok").inc()
        self.metrics.result_latency.observe(self.book.age_s(job))

    async def _sample_queues(self) -> None:
        queues = {"requests": self.request_queue_url, "dead_letter": self.dead_letter_queue_url}
        while True:
            for label, url in queues.items():
                if url is None:
                    continue
                with contextlib.suppress(BotoCoreError, ClientError):
                    visible, in_flight = await self._queue_depth(label, url)
                    self.metrics.queue_messages.labels(label, "visible").set(visible)
                    self.metrics.queue_messages.labels(label, "in_flight").set(in_flight)
            await asyncio.sleep(QUEUE_SAMPLE_PERIOD_S)

    async def _queue_depth(self, label: str, url: str) -> tuple[int, int]:
        """The request queue's depth as the scaler last saw it (it looks every second), so
        that the same figures are not asked for twice; other queues from SQS."""
        last = self.scaler.last if self.scaler is not None else None
        if label == "requests" and last is not None:
            return last.backlog, last.in_flight
        return await queue_depth(self.aws.sqs, url)
