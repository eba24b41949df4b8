"""The gateway's long-lived parts and their life: connect, serve, stop.

Start-up never fails because AWS is briefly away: a connect task retries with backoff
until the request queue is found and this gateway's reply queue exists; until then
`/readyz` says why it is not ready and uploads get 503 with Retry-After.

The reply queue is named after the gateway's id. With `IRAS_GATEWAY_ID` set, the id
outlives the process: a restarted gateway finds its queue again, drains the replies that
came while it was down (for jobs it no longer knows: their results are read back from the
output bucket), and stopping keeps the queue, since replies keep coming meanwhile. (A reply
taken by the last long poll of a gateway that stopped or died comes back after the queue's
visibility timeout, 30 s, and is drained then.) Without it the id is random, and stopping
deletes the queue; results meant for it are still written to the output bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import uuid
from typing import Any

from iras.aws import AwsClients
from iras.aws.errors import AWS_ERRORS
from iras.aws.retry import retry_while_away
from iras.aws.types import OutboundMessage
from iras.config import Settings
from iras.infra.provision import find_queue_url
from iras.messages import GatewayReport
from iras.model.errors import ModelError
from iras.scaler.controller import Scaler, scaling_config
from iras.scaler.fleet import FleetConfigError
from iras.scaler.fleets import make_fleet
from iras.scaler.lease import Lease
from iras.scaler.local_runner import LocalInstanceRunner, cores_shared
from iras.scaler.peers import PeerReporter
from iras.web.golden import GoldenCheck
from iras.web.jobs import JobBook
from iras.web.metrics import GatewayMetrics
from iras.web.readiness import ListenerWatch, Readiness
from iras.web.replies import create_reply_queue, delete_reply_queue, listen_for_replies
from iras.web.reply_claim import ReplyQueueClaim
from iras.web.result_cache import ResultCache, model_identity
from iras.web.sender import BatchingSender
from iras.web.sockets import SocketSlots
from iras.web.submit import Submitter

log = logging.getLogger(__name__)

#: How often queue depths are sampled for /metrics.
QUEUE_SAMPLE_PERIOD_S = 2.0
#: Drained replies are logged as one line per this period, not one per reply.
DRAIN_LOG_PERIOD_S = 5.0


class Gateway:
    """Everything a request handler needs, built once per app."""

    def __init__(self, settings: Settings, aws: AwsClients, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.aws = aws
        self.metrics = metrics
        self.id = settings.gateway_id or uuid.uuid4().hex[:12]
        #: A fixed id will be back for its replies; a random one never will. A queue
        #: named outright is the operator's: it stays.
        self.keeps_reply_queue = settings.gateway_id is not None or settings.reply_queue is not None
        #: The claim on a queue named outright (`iras.web.reply_claim`), None otherwise.
        self.reply_claim = (
            ReplyQueueClaim(aws.s3, settings, settings.reply_queue, self.id)
            if settings.reply_queue is not None
            else None
        )
        self.book = JobBook(
            settings.max_jobs_in_memory,
            settings.job_ttl_s,
            max_jobs_per_client=settings.max_jobs_per_client,
        )
        self.sockets = SocketSlots(settings.max_websockets, settings.max_websockets_per_client)
        metrics.jobs_in_memory.set_function(lambda: len(self.book))
        self.ready = asyncio.Event()
        self.reply_listener = ListenerWatch()
        self.readiness = Readiness(self)
        self.golden = GoldenCheck(self)
        self.not_ready_reason = "connecting to AWS"
        self.request_queue_url: str | None = None
        self.dead_letter_queue_url: str | None = None
        self.reply_queue_url: str | None = None
        self.submitter: Submitter | None = None
        self.scaler: Scaler | None = None
        self.lease: Lease | None = None
        self._sender: BatchingSender[str | OutboundMessage] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._claim_keeper: asyncio.Task[None] | None = None
        self._drained_unlogged = 0
        self._drain_log: asyncio.TimerHandle | None = None

    @property
    def reply_queue_name(self) -> str:
        return self.settings.reply_queue or f"{self.settings.reply_queue_prefix}-{self.id}"

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._connect(), name="gateway-connect"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.submitter is not None and self.submitter.front is not None:
            await self.submitter.front.close()
        if self._sender is not None:
            await self._sender.close()
        if self.lease is not None:  # first: another gateway leads at its next read
            await self.lease.release()
        if self.reply_claim is not None:
            await self.reply_claim.release()
        if self.scaler is not None:
            await self.scaler.shutdown()
        if self._drain_log is not None:
            self._drain_log.cancel()
            self._log_drained()
        if self.reply_queue_url is not None and not self.keeps_reply_queue:
            await delete_reply_queue(self.aws.sqs, self.reply_queue_url)
        elif self.reply_queue_url is not None:
            log.info(
                "keeping reply queue %s for the next gateway %s", self.reply_queue_url, self.id
            )

    async def _connect(self) -> None:
        await retry_while_away(
            self._try_connect,
            on=self._not_ready_because,
            failed="gateway not ready",
            logger=log,
            traceback_unless=(*AWS_ERRORS, LookupError),
            wait_max_s=5.0,
        )

    def _not_ready_because(self, error: Exception) -> bool:
        """Retry every failure to connect (AWS may come back), saying why in `/readyz`."""
        self.not_ready_reason = str(error) or repr(error)
        return True

    async def _try_connect(self) -> None:
        settings, sqs = self.settings, self.aws.sqs
        request_url = await find_queue_url(sqs, settings.request_queue)
        if request_url is None:
            raise LookupError(
                f"request queue {settings.request_queue!r} does not exist: run `iras provision`"
            )
        self.request_queue_url = request_url
        self.dead_letter_queue_url = await find_queue_url(sqs, settings.dead_letter_queue)
        if self.reply_claim is not None:  # a queue named outright: this gateway's alone
            await self.reply_claim.take()
            if self._claim_keeper is None:  # once, though connecting may be tried again
                self._claim_keeper = asyncio.create_task(
                    self.reply_claim.keep(), name="reply-claim"
                )
                self._tasks.append(self._claim_keeper)
        reply_url = await create_reply_queue(sqs, self.reply_queue_name)
        self.reply_queue_url = reply_url
        self._sender = BatchingSender(
            functools.partial(self.aws.messages.send_batch, request_url),
            settings.send_batch_wait_ms / 1000.0,
            companions=lambda: self.submitter.storing if self.submitter else 0,
        )
        self.submitter = Submitter(
            settings,
            self.aws,
            self.book,
            self._sender,
            reply_url,
            on_submit=self._on_submit,
            cache=self._result_cache(),
            on_cached=lambda source: self.metrics.cached_answers.labels(source).inc(),
        )
        if settings.autoscaler:
            await self._start_scaler(request_url)
        listener = asyncio.create_task(
            listen_for_replies(
                self.aws.messages,
                reply_url,
                settings.receive_wait_s,
                self._deliver,
                on_report=self._peer_report,
                on_receive=self.reply_listener.received,
            ),
            name="reply-listener",
        )
        self.reply_listener.watch(listener)
        self._tasks.append(listener)
        self._tasks.append(asyncio.create_task(self._sample_queues(), name="queue-sampler"))
        self.ready.set()
        log.info(
            "gateway %s ready: requests to %s, replies on %s (%s at stop)",
            self.id,
            request_url,
            reply_url,
            "kept" if self.keeps_reply_queue else "deleted",
        )

    def _result_cache(self) -> ResultCache | None:
        """The result cache (IRAS_RESULT_CACHE), for the model the settings give the fleet."""
        settings = self.settings
        if not settings.result_cache:
            return None
        try:
            identity = model_identity(settings)
        except (ModelError, OSError) as error:  # your own model, on the workers' disks only
            log.warning("result cache off: the gateway cannot read the model's card: %s", error)
            return None
        log.info(
            "result cache on: %s %s (%s), up to %d in memory, shared under %s",
            identity.name,
            identity.version,
            identity.precision,
            settings.result_cache_entries,
            identity.folder,
        )
        return ResultCache(
            self.aws.objects, settings.records_bucket, identity, settings.result_cache_entries
        )

    async def _start_scaler(self, request_url: str) -> None:
        """The autoscaler, its lease (one gateway of several acts), and, on one machine,
        the runner that gives each instance its worker process."""
        settings = self.settings
        fleet = make_fleet(self.aws, settings)
        runner = None
        if settings.local_instances:
            most = scaling_config(settings).max_workers
            runner = LocalInstanceRunner(fleet, cores_shared(os.environ, most, os.cpu_count() or 1))
        self.lease = Lease(
            self.aws.s3,
            settings.records_bucket,
            settings.leader_lease_key,
            self.id,
            settings.leader_lease_s,
            on_change=lambda leading: self.scaler.wake() if self.scaler else None,
        )
        submitter = self.submitter
        assert submitter is not None
        self.scaler = Scaler(
            settings,
            self.aws.messages,
            request_url,
            fleet,
            runner,
            arriving=lambda: submitter.arriving,
            on_scale=lambda direction: self.metrics.scale_events.labels(direction).inc(),
            lease=self.lease,
            reporter=PeerReporter(
                self.aws.sqs, self.aws.messages, settings.reply_queue_prefix, self.id
            ),
        )
        # One round and one look before ready: a lone gateway leads from its first upload,
        # and /v1/scaler's timeline starts from the fleet as found, not from whatever the
        # first uploads have already set in motion.
        with contextlib.suppress(*AWS_ERRORS):  # the lease's own loop tries again
            await self.lease.round()
        with contextlib.suppress(FleetConfigError):  # the scaler's loop reports it
            await self.scaler.step()
        self._tasks.append(asyncio.create_task(self.lease.keep(), name="scaler-lease"))
        self._tasks.append(asyncio.create_task(self.scaler.run(), name="scaler"))

    def _peer_report(self, report: GatewayReport) -> None:
        if self.scaler is not None:
            self.scaler.peer_report(report)

    def _on_submit(self, count: int) -> None:
        self.metrics.images_accepted.inc(count)
        if self.scaler is not None:
            self.scaler.nudge()

    def _deliver(self, result: dict[str, Any]) -> None:
        if self.scaler is not None:  # every result: its worker's rate, boot time, an image
            self.scaler.observe_result(result)
        if self.submitter is not None and self.submitter.front is not None:
            self.submitter.front.landed(result)  # before the book: followers then see it
        job = self.book.deliver(result)
        if job is not None:
            self.metrics.observe_result(result, self.book.age_s(job))  # outcome, stages
        elif self.book.result(str(result["request_id"])) is not None:
            self.metrics.unmatched_results.inc()  # a duplicate: SQS delivers at least once
        else:
            self._drained()

    def _drained(self) -> None:
        """Count a result for a job this gateway does not know: one sent to it before a
        restart (same gateway id), or for a job it has forgotten. Its reply is consumed like
        any other; the result is in the output bucket. One log line per `DRAIN_LOG_PERIOD_S`.
        """
        self.metrics.drained_results.inc()
        self._drained_unlogged += 1
        if self._drain_log is None:
            loop = asyncio.get_running_loop()
            self._drain_log = loop.call_later(DRAIN_LOG_PERIOD_S, self._log_drained)

    def _log_drained(self) -> None:
        self._drain_log = None
        if self._drained_unlogged:
            log.info(
                "drained %d replies for jobs from before a restart (or forgotten); their "
                "results are in the output bucket",
                self._drained_unlogged,
            )
            self._drained_unlogged = 0

    async def _sample_queues(self) -> None:
        while True:  # the sampler must outlive any outage: every failure is retried
            await retry_while_away(
                self._sample_queues_once,
                on=Exception,
                failed="sampling queue depths failed",
                logger=log,
                wait_initial_s=QUEUE_SAMPLE_PERIOD_S,
                wait_max_s=30.0,
            )
            await asyncio.sleep(QUEUE_SAMPLE_PERIOD_S)

    async def _sample_queues_once(self) -> None:
        queues = {"requests": self.request_queue_url, "dead_letter": self.dead_letter_queue_url}
        for label, url in queues.items():
            if url is not None:
                visible, in_flight = await self._queue_depth(label, url)
                self.metrics.queue_messages.labels(label, "visible").set(visible)
                self.metrics.queue_messages.labels(label, "in_flight").set(in_flight)

    async def _queue_depth(self, label: str, url: str) -> tuple[int, int]:
        """The request queue's depth as the scaler last saw it (it looks every second), so
        that the same figures are not asked for twice; other queues from SQS."""
        last = self.scaler.last if self.scaler is not None else None
        if label == "requests" and last is not None:
            return last.backlog, last.in_flight
        return await self.aws.messages.depth(url)
