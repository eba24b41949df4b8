"""The app-tier worker: receive, batch, download, classify, publish, delete.

Three loops share one event loop. Receivers keep the inbox stocked; the fetcher takes a
batch from it and downloads its images; the runner classifies batches in threads, two at
a time (one decoding while the other runs the network), and hands their results to
publish tasks. Two semaphores cap the work. `_held_batches_cap`, of
`prefetch_batches + BATCHES_CLASSIFIED_AT_ONCE`, caps the batches a worker holds
(downloading, ready or classifying): the fetcher works ahead of the classifier, and no
further, for messages a worker holds are hidden from the rest of the fleet. The runner's
`classifying_cap` caps the batches classified at once.

Stopping (`stop()`, SIGTERM) follows arq's order, all of it within one deadline taken as
the stop begins, `shutdown_grace_s` later (`iras.worker.stopping`): stop pulling, hand
back what was not started (visibility 0, so another worker takes it at once) unless it
was received before (`split_last_chance`: classified here instead, with the batches in
hand), let those finish and publish in what remains, then cancel what is left. A worker
with nothing to do for `idle_exit_s` stops the same way, by itself; so does a worker in
burst mode once the queue is empty and it has nothing in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol

from opentelemetry.trace import Span

from iras.aws import AwsClients
from iras.aws.errors import AWS_ERRORS
from iras.aws.queues import SQS_BATCH_LIMIT
from iras.config import Settings
from iras.model import ImageError, Outcome
from iras.runtime import in_daemon_thread
from iras.telemetry.log_context import bind_log_context, request_ids
from iras.telemetry.tracing import TRACER, start_batch_span, under
from iras.worker.batch import Batch, answer_batch, make_result
from iras.worker.downloading import download_batch
from iras.worker.held import HeldMessages
from iras.worker.inbox import Inbox
from iras.worker.leader import LeaderProbe
from iras.worker.metrics import BatchIds, WorkerMetrics, classify_timed, stage_timings
from iras.worker.protection import ScaleInProtection
from iras.worker.publishing import Outgoing, Publisher
from iras.worker.receiving import Received, receive_until
from iras.worker.stopping import Deadline, finish_or_cancel
from iras.worker.throughput import Throughput

log = logging.getLogger(__name__)


#: Batches classified at once: one decoding while the other is in the network.
BATCHES_CLASSIFIED_AT_ONCE = 2


class BatchClassifier(Protocol):
    """What the worker needs of a model: a name, and one outcome per image, in order.

    `iras.model.Classifier` is one; tests wrap it (to make it slow, say) without
    subclassing, and the worker module imports no torch until a model is loaded.
    """

    name: str

    def classify(self, blobs: Sequence[bytes], top_k: int = 5) -> list[Outcome]: ...


class ExitReason(enum.Enum):
    STOPPED = "stopped"  # asked to stop (SIGTERM, scale-in)
    IDLE = "idle"  # nothing to do for idle_exit_s
    EMPTY = "empty"  # burst mode: the queue is empty and nothing is in hand
    CRASHED = "crashed"  # a loop died of an exception: a bug (the process exits 1)


class Worker:
    """One worker process's pipeline. `run()` until `stop()`, idle, or, with `burst`,
    until the queue is empty (arq's burst: the real loop, run to completion)."""

    def __init__(
        self,
        settings: Settings,
        aws: AwsClients,
        classifier: BatchClassifier,
        *,
        request_queue_url: str,
        name: str,
        burst: bool = False,
        leader: LeaderProbe | None = None,
        protection: ScaleInProtection | None = None,
    ) -> None:
        """`leader`, for a worker on an instance: while it says a scaler leads, an idle
        worker does not exit by itself (`iras.worker.leader`). `protection`, for one in
        an Auto Scaling group: its instance is protected from scale-in while it holds
        requests (`iras.worker.protection`)."""
        self._settings = settings
        self._leader = leader
        self._protection = protection
        self._aws = aws
        self._classifier = classifier
        # Results carry the model's version (its card's); a classifier with none says "".
        self._model_version: str = getattr(classifier, "version", "")
        self._queue_url = request_queue_url
        self.name = name
        self._burst = burst
        self._publisher = Publisher(settings, aws, request_queue_url)
        self._inbox: Inbox[Received] = Inbox(settings.batch_size + SQS_BATCH_LIMIT)
        self._held = HeldMessages()
        # Caps the batches this worker holds (downloading, ready or classifying).
        self._held_batches_cap = asyncio.Semaphore(
            settings.prefetch_batches + BATCHES_CLASSIFIED_AT_ONCE
        )
        self._ready_batches: asyncio.Queue[Batch | None] = asyncio.Queue()  # None: end
        self._downloading: list[Received] = []  # the batch whose images are being fetched
        self._batches_classifying = 0
        self._publish_tasks: set[asyncio.Task[None]] = set()
        self._hand_back_tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._exit_reason = ExitReason.STOPPED
        self._last_active = time.monotonic()
        self._throughput = Throughput()
        # Stage times: carried in results to the gateway, and on the optional worker port.
        self.metrics = WorkerMetrics()
        self._batch_ids = BatchIds()
        self._up_at_s = time.monotonic()  # reset as the receivers start (`run`)
        self.batches_done = 0

    def stop(self) -> None:
        """Begin a graceful stop (safe to call from a signal handler on the loop)."""
        self._stopping.set()

    async def run(self) -> ExitReason:
        """Work until stopped, idle or (burst) out of work; return why it ended."""
        bind_log_context(worker=self.name)  # on every line from here, its tasks' too
        log.info(
            "worker %s up: model %s, batch %d, wait %d ms, %d receivers, queue %s",
            self.name,
            self._classifier.name,
            self._settings.batch_size,
            self._settings.batch_wait_ms,
            self._settings.receivers,
            self._queue_url,
        )
        receivers = [
            asyncio.create_task(
                receive_until(
                    self._stopping,
                    self._aws.messages,
                    self._queue_url,
                    self._inbox,
                    self._settings.receive_wait_s,
                    self._settings.visibility_timeout_s,
                    self._on_received,
                ),
                name=f"receiver-{i}",
            )
            for i in range(self._settings.receivers)
        ]
        # Ready: the model is loaded and the first receive call begins now. Results carry
        # the seconds since (`worker_up_s`), from which the gateway dates this moment on its
        # own clock, and with its launch time knows the instance's boot time.
        self._up_at_s = time.monotonic()
        fetcher = asyncio.create_task(self._fetch_loop(), name="fetcher")
        runner = asyncio.create_task(self._run_loop(), name="runner")
        helpers = [
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._idle_watch_loop(), name="idle-watch"),
        ]
        if self._protection is not None:
            helpers.append(
                asyncio.create_task(
                    self._protection.run(self._holds_requests), name="scale-in-protection"
                )
            )
        stop_asked = asyncio.create_task(self._stopping.wait())
        await asyncio.wait([stop_asked, fetcher, runner], return_when=asyncio.FIRST_COMPLETED)
        for task in (fetcher, runner):  # a crashed loop is a bug: surface it
            if task.done() and not task.cancelled() and task.exception():
                self._exit_reason = ExitReason.CRASHED  # whatever stop had begun
                self._stopping.set()
                log.error("worker loop %s crashed", task.get_name(), exc_info=task.exception())
        await self._shut_down(receivers, fetcher, runner)
        stop_asked.cancel()
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, stop_asked, return_exceptions=True)
        log.info(
            "worker %s exits (%s) after %d batches",
            self.name,
            self._exit_reason.value,
            self.batches_done,
        )
        return self._exit_reason

    def _end(self, reason: ExitReason) -> bool:
        """Stop by itself for `reason`; False when a stop had begun already (and keeps its
        reason: a worker asked to stop does not turn idle while stopping)."""
        if self._stopping.is_set():
            return False
        self._exit_reason = reason
        self._stopping.set()
        return True

    # --- the loops ------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        settings = self._settings
        while True:
            await self._held_batches_cap.acquire()
            messages = await self._inbox.take_batch(
                settings.batch_size,
                settings.batch_wait_ms / 1000.0,
                worth_waiting=self._model_busy,
            )
            self._downloading = messages
            span = start_batch_span([message.trace_context for message in messages])
            try:
                with TRACER.start_as_current_span("iras.download", context=under(span)):
                    batch = await download_batch(self._aws.objects, settings.input_bucket, messages)
            except BaseException:  # a stop cancels a download: its messages go back
                _end_unfinished(span, "the download was cancelled or failed")
                raise
            batch.span = span
            self._downloading = []
            self._settle_unclassifiable(batch)
            if batch.images:
                self._ready_batches.put_nowait(batch)
            else:
                self._held_batches_cap.release()
                span.end()

    async def _run_loop(self) -> None:
        """Classify ready batches, up to `BATCHES_CLASSIFIED_AT_ONCE`, until told to end.

        The classifier decodes outside its lock and runs the network inside it, so a
        second batch in flight is being decoded while the first one runs: on a full queue
        the cores go to decode and inference instead of waiting for each other. A place
        under the cap is taken before a batch, so batches not yet started stay in
        `_ready_batches` for a stop to hand back.
        """
        classifying_cap = asyncio.Semaphore(BATCHES_CLASSIFIED_AT_ONCE)  # batches at once
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                await classifying_cap.acquire()
                batch = await self._ready_batches.get()
                if batch is None:
                    break
                task = asyncio.create_task(self._run_batch(batch, classifying_cap))
                running.add(task)
                task.add_done_callback(running.discard)
            if running:  # the batches in hand finish
                await asyncio.wait(running)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def _model_busy(self) -> bool:
        """Whether a batch is running or waiting to: only then is it worth holding a
        partly filled batch back for company (an idle model takes a lone request at once)."""
        return self._batches_classifying > 0 or not self._ready_batches.empty()

    async def _run_batch(self, batch: Batch, classifying_cap: asyncio.Semaphore) -> None:
        self._batches_classifying += 1
        try:
            await self._classify_and_publish(batch)
        finally:
            self._batches_classifying -= 1
            classifying_cap.release()
            self._held_batches_cap.release()
            self._last_active = time.monotonic()

    async def _classify_and_publish(self, batch: Batch) -> None:
        blobs = [blob for _, blob in batch.images]
        started = time.perf_counter()
        try:
            # A daemon thread: a batch given up on at the stop's deadline does not keep
            # the process up (`iras.runtime.in_daemon_thread`).
            with TRACER.start_as_current_span("iras.inference", context=under(batch.span)):
                times = await in_daemon_thread(
                    classify_timed, self._classifier, blobs, self._settings.top_k
                )
        except Exception:
            # The classifier isolates bad images itself; reaching here is a model failure.
            # Leave the messages to be delivered again (and dead-lettered if it persists).
            log.exception("classifying a batch of %d failed; messages will be retried", len(blobs))
            self._forget([received for received, _ in batch.images])
            _end_unfinished(batch.span, "classifying failed")
            return
        except asyncio.CancelledError:  # a batch in hand left running at a stop's deadline
            _end_unfinished(batch.span, "left running at the stop's deadline")
            raise
        finished = time.perf_counter()
        outcomes = times.outcomes
        self._throughput.batch_done(started, finished, len(blobs))
        self.metrics.observe_batch(batch.download_ms / 1000.0, times, len(blobs))
        timings = {
            **stage_timings(batch.download_ms, times, len(blobs), self._batch_ids.next()),
            **self._capacity_report(),
        }
        outgoing = answer_batch(
            batch.images,
            outcomes,
            model=self._classifier.name,
            model_version=self._model_version,
            worker=self.name,
            batch_timings=timings,
        )
        errors = sum(isinstance(outcome, ImageError) for outcome in outcomes)
        self.batches_done += 1
        bind_log_context(batch=self.batches_done)  # and its publishing's lines
        log.info(
            "batch %d: %d images, %d errors, download %.0f ms, decode %.0f ms, "
            "inference %.0f ms (%.1f ms/image)",
            self.batches_done,
            len(blobs),
            errors,
            batch.download_ms,
            timings.get("decode_ms", 0.0),
            timings["inference_ms"],
            timings["inference_ms"] / len(blobs),
            extra={
                "images": len(blobs),
                "errors": errors,
                **timings,
                "request_ids": [r.request.request_id for r, _ in batch.images if r.request],
            },
        )
        self._spawn_publish(outgoing, batch_span=batch.span)

    def _capacity_report(self) -> dict[str, float]:
        """What the autoscaler learns from each result (`iras.scaler.reports`): this
        worker's images per busy second over its recent batches, and its seconds up."""
        report = {"worker_up_s": round(time.monotonic() - self._up_at_s, 3)}
        rate = self._throughput.rate_ips
        if rate is not None:
            report["worker_rate_ips"] = round(rate, 3)
        return report

    async def _heartbeat_loop(self) -> None:
        """Extend the visibility of held messages before it runs out."""
        timeout_s = self._settings.visibility_timeout_s
        period_s = max(0.5, timeout_s / 4)
        while True:
            await asyncio.sleep(period_s)
            now = time.monotonic()
            due = self._held.due_for_extension(now, margin_s=timeout_s / 2)
            if not due:
                continue
            try:
                failed = set(
                    await self._aws.messages.change_visibility_batch(
                        self._queue_url, due, timeout_s
                    )
                )
            except Exception as error:  # tried again next period; the loop must live on
                log.warning("extending visibility of %d messages failed: %r", len(due), error)
                continue
            for i, handle in enumerate(due):
                if i not in failed:
                    self._held.extended(handle, now, timeout_s)
            log.info(
                "extended visibility of %d held messages by %d s", len(due) - len(failed), timeout_s
            )

    async def _idle_watch_loop(self) -> None:
        idle_exit_s = self._settings.idle_exit_s
        if idle_exit_s <= 0:
            return
        while True:
            await asyncio.sleep(min(1.0, idle_exit_s / 4))
            idle_for_s = time.monotonic() - self._last_active
            if len(self._held) == 0 and idle_for_s >= idle_exit_s:
                if self._leader is not None and await self._leader.alive():
                    self._last_active = time.monotonic()  # asked again an idle period on
                    continue
                if self._end(ExitReason.IDLE):
                    log.info("idle for %.1f s: exiting", idle_for_s)
                return

    # --- bookkeeping ------------------------------------------------------------------

    def _on_received(self, messages: Sequence[Received]) -> None:
        now = time.monotonic()
        for message in messages:
            self._held.add(message.receipt_handle, now, self._settings.visibility_timeout_s)
        if messages:
            self._last_active = now
            if self._protection is not None:
                self._protection.working()
        elif self._burst and self._drained() and self._end(ExitReason.EMPTY):
            log.info("queue empty and nothing in hand: exiting (burst)")

    def _holds_requests(self) -> bool:
        return len(self._held) > 0

    def _drained(self) -> bool:
        """Whether this worker has nothing left to do; with a receive that came back
        empty, that is where burst mode ends.

        Nothing is buffered, downloading, ready, classifying or publishing, and no message
        is held. Messages it gave up on (a failed download, a model failure) come back
        after their visibility timeout and are not waited for; one that arrives while the
        worker stops is handed back, as at any stop.
        """
        return (
            len(self._held) == 0
            and len(self._inbox) == 0
            and not self._downloading
            and self._ready_batches.empty()
            and self._batches_classifying == 0
            and not self._publish_tasks
        )

    def _forget(self, messages: Sequence[Received]) -> None:
        for message in messages:
            self._held.discard(message.receipt_handle)

    def _settle_unclassifiable(self, batch: Batch) -> None:
        """Answer gone inputs and refused requests with an error, drop malformed messages,
        let failures retry.

        A refused request (`Received.refused`: sound ids and reply queue, an unfit field)
        gets its own error result, as a corrupt image does; a message with no address to
        answer is deleted, for it would only loop to the dead-letter queue.
        """
        self._forget(batch.retry)
        gone = ImageError("the uploaded image is no longer in the input bucket")
        errors = [(received, received.request, gone) for received in batch.missing]
        malformed = []
        for message in batch.malformed:
            if message.refused is None:
                log.error("deleting malformed message %s: %s", message.message_id, message.problem)
                malformed.append(message)
            else:
                log.warning(
                    "answering refused message %s: %s",
                    message.message_id,
                    message.problem,
                    extra=request_ids(message.refused),
                )
                refusal = ImageError(f"the request was refused: {message.problem}")
                errors.append((message, message.refused, refusal))
        answers = [
            Outgoing(
                received,
                make_result(
                    request,
                    error,
                    model=self._classifier.name,
                    model_version=self._model_version,
                    worker=self.name,
                    timings={},
                ),
            )
            for received, request, error in errors
            if request is not None
        ]
        if answers or malformed:
            self._spawn_publish(answers, also_delete=malformed)

    def _spawn_publish(
        self,
        outgoing: Sequence[Outgoing],
        also_delete: Sequence[Received] = (),
        batch_span: Span | None = None,
    ) -> None:
        """Publish in a task of its own; `batch_span` (its batch's) ends when it is done."""
        _spawn_into(self._publish_tasks, self._publish(outgoing, also_delete, batch_span))

    async def _publish(
        self,
        outgoing: Sequence[Outgoing],
        also_delete: Sequence[Received],
        batch_span: Span | None = None,
    ) -> None:
        try:
            started = time.perf_counter()
            with TRACER.start_as_current_span("iras.publish", context=under(batch_span)):
                await self._publisher.publish(outgoing)
            if outgoing:  # results stored, sent and their requests deleted
                self.metrics.observe_publish(time.perf_counter() - started)
            await self._publisher.delete(also_delete)
        except Exception:  # AWS away mid-publish: the messages come back, nothing is lost
            log.warning(
                "publishing %d results failed; their requests will be delivered again",
                len(outgoing),
                exc_info=True,
            )
        finally:
            # Whatever was not deleted comes back after its visibility timeout.
            self._forget([item.received for item in outgoing])
            self._forget(also_delete)
            if batch_span is not None:
                batch_span.end()

    # --- stopping ------------------------------------------------------------------------

    async def _shut_down(
        self,
        receivers: list[asyncio.Task[None]],
        fetcher: asyncio.Task[None],
        runner: asyncio.Task[None],
    ) -> None:
        """Stop in arq's order, all of it within `shutdown_grace_s` of now: each step
        waits for what remains of one deadline (`iras.worker.stopping`), not a grace of
        its own, so that a stop takes at most the grace (and the hand-back's reserve)."""
        deadline = Deadline(self._settings.shutdown_grace_s)
        fetcher.cancel()  # stop pulling: no new batch starts
        await asyncio.gather(fetcher, return_exceptions=True)
        # Receives in flight finish, and what they bring is handed back: a long poll that
        # is cancelled can still take a message that arrives at that moment, which then
        # stays hidden for a whole visibility timeout (measured: a 60 s cold start), and
        # it would take the messages handed back, too. So the wait is a full long poll,
        # as far as the deadline allows; receivers waiting for room are woken by the drain.
        unstarted = self._inbox.drain() + self._downloading
        await finish_or_cancel(receivers, deadline.receive_wait_s(self._settings.receive_wait_s))
        unstarted += self._inbox.drain() + self._take_ready()
        last_chance, handed_back = split_last_chance(unstarted, self._settings.max_receive_count)
        self._spawn_hand_back(handed_back)
        if last_chance:  # classified here, with the batches in hand (`split_last_chance`)
            await self._queue_final_batches(last_chance, deadline)
        self._ready_batches.put_nowait(None)  # the runner ends after the batches in hand
        await finish_or_cancel(self._hand_back_tasks, deadline.hand_back_s())
        if await finish_or_cancel([runner], deadline.remaining_s()):
            log.warning(
                "batch in hand still running after %.0f s; leaving it",
                self._settings.shutdown_grace_s,
            )
        await finish_or_cancel(self._publish_tasks, deadline.remaining_s())

    def _take_ready(self) -> list[Received]:
        """Take out the downloaded batches no classifier has started; return their messages."""
        unstarted: list[Received] = []
        while not self._ready_batches.empty():
            batch = self._ready_batches.get_nowait()
            if batch is not None:
                unstarted += [received for received, _ in batch.images]
                _end_unfinished(batch.span, "handed back at a stop")
        return unstarted

    async def _queue_final_batches(self, messages: Sequence[Received], deadline: Deadline) -> None:
        """Download `messages` for the runner's last batches, within the deadline (what
        is not downloaded by then comes back after its visibility timeout)."""
        settings = self._settings
        size = settings.batch_size

        async def download_all() -> None:
            for start in range(0, len(messages), size):
                chunk = list(messages[start : start + size])
                batch = await download_batch(self._aws.objects, settings.input_bucket, chunk)
                self._settle_unclassifiable(batch)
                if batch.images:
                    self._ready_batches.put_nowait(batch)
                    await self._held_batches_cap.acquire()  # the runner releases it per batch

        log.info("classifying %d requests received before, before stopping", len(messages))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(deadline.remaining_s()):
                await download_all()

    def _spawn_hand_back(self, messages: Sequence[Received]) -> None:
        """Hand `messages` back in a task of its own: a stop that is itself cancelled still
        completes it, and a spent deadline still gives it a reserve (`Deadline.hand_back_s`)."""
        if messages:
            _spawn_into(self._hand_back_tasks, self._hand_back(messages))

    async def _hand_back(self, messages: Sequence[Received]) -> None:
        """Make unstarted messages visible again at once, for another worker to take."""
        handles = [message.receipt_handle for message in messages]
        with contextlib.suppress(*AWS_ERRORS):  # they come back after their timeout instead
            await self._aws.messages.change_visibility_batch(self._queue_url, handles, 0)
        self._forget(messages)
        log.info("handed back %d unstarted messages", len(messages))


def split_last_chance(
    messages: Sequence[Received], max_receive_count: int
) -> tuple[list[Received], list[Received]]:
    """Of the messages a stopping worker did not start, those it classifies before it
    exits (received before: handed back by another stopping worker, or after a failure),
    and those it hands back (their first receive).

    Why: a scale-in stops several workers at once, their long polls in flight still take
    messages (a burst that comes just then), and each stopping worker hands them back,
    to be taken by another stopping worker's poll, again and again. SQS moves a message
    received `max_receive_count` times to the dead-letter queue at its next receive.
    Measured before this: 141 hand-backs of 100 requests in one burst after a scale-in
    to 0, and 44 of them dead-lettered untried, their uploads 504s. Classifying what
    comes a second time ends every such chain at two receives, with no wait; handing
    it back later instead cost a trickle image 5 s.
    """
    threshold = min(2, max_receive_count)
    kept = [m for m in messages if m.receive_count >= threshold]
    return kept, [m for m in messages if m.receive_count < threshold]


def _spawn_into(tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> None:
    """Run `work` as a task kept in `tasks` while it runs (a stop waits for them there)."""
    task = asyncio.create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def _end_unfinished(span: Span | None, why: str) -> None:
    """End the `iras.batch` span of a batch that will not be published (which ends it
    otherwise), saying why: a trace must not hold a span that never ends."""
    if span is None:
        return
    if span.is_recording():
        span.set_attribute("iras.batch.unfinished", why)
    span.end()
