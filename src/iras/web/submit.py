"""Turn validated uploads into a job: images into S3, a manifest, requests onto SQS.

The order keeps promises: images and the job manifest are stored before any request is
queued (a worker never looks for an image that is not there yet), and the job is in the
book before its requests go out (a fast result always finds its job).

All of it must finish within `aws_deadline_s`, or the upload is refused whole with
`AwsUnavailable` (the route answers 503 with Retry-After): a client retries rather than
hangs while AWS is away. A refused upload's client got no id, so the gateway forgets its
job; images already stored stay as orphans in the input bucket. Requests of it that were
still waiting in the sender are withdrawn; a SendMessageBatch already on its way cannot
be, and SQS may have taken it: such a request is classified all the same, its result
written to the output bucket under an id nobody was given and its reply drained. Nothing
confusing reaches a client: one who retries gets new ids and its own answer.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Sequence

from opentelemetry import trace

from iras.aws import AwsClients
from iras.aws.errors import AWS_ERRORS
from iras.aws.types import OutboundMessage
from iras.config import Settings
from iras.messages import REQUEST_MAX_MESSAGE_BYTES, Request, encode_request, input_key, job_key
from iras.telemetry.propagation import traced_message
from iras.telemetry.tracing import TRACER
from iras.web.cache_front import CacheFront
from iras.web.jobs import Job, JobBook, JobSlot, RequestRef
from iras.web.result_cache import ResultCache, ResultJson, content_digests
from iras.web.sender import BatchingSender, SendFailed
from iras.web.uploads import ImageFile

#: What storing and queueing raise when AWS is away, refusing or slow.
_FAILURES: tuple[type[Exception], ...] = (*AWS_ERRORS, SendFailed)


async def _none() -> list[ResultJson | None]:
    return []


class AwsUnavailable(Exception):
    """Storing or queueing failed or missed the deadline: nothing was accepted."""


class Submitter:
    """Stores uploads and queues their requests, naming this gateway's reply queue."""

    def __init__(
        self,
        settings: Settings,
        aws: AwsClients,
        book: JobBook,
        sender: BatchingSender[str | OutboundMessage],
        reply_queue_url: str,
        on_submit: Callable[[int], object] = lambda count: None,
        cache: ResultCache | None = None,
        on_cached: Callable[[str], object] = lambda source: None,
    ) -> None:
        self._settings = settings
        self._aws = aws
        self._book = book
        self._sender = sender
        self._reply_queue_url = reply_queue_url
        self._on_submit = on_submit
        #: The result cache's door (None: IRAS_RESULT_CACHE=false).
        self.front = (
            CacheFront(cache, settings, aws.objects, book, self._send_now, on_cached)
            if cache is not None
            else None
        )
        self.arriving = 0  # images being stored and queued right now (the scaler counts them)
        self.storing = 0  # of those, images whose upload to S3 has not finished yet

    async def submit(
        self,
        uploads: Sequence[ImageFile],
        owner: str | None = None,
        *,
        manifest: bool = True,
        client: str | None = None,
        cached: bool = True,
    ) -> Job:
        """Store and queue `uploads` as one job of `client` within `aws_deadline_s`; raise
        `AwsUnavailable` when AWS fails or is too slow, and `TooManyJobs` (before anything
        is stored) when the client's share of the job book is full.

        `manifest=False` skips the job's manifest object (one S3 call): the course
        protocol's single-image jobs are never looked up by job id. `cached=False` sends
        every image to the fleet, whatever the result cache knows (the deep readiness
        check's golden image, which is there to see the fleet answer).
        """
        front = self.front if cached else None
        slot = self._book.reserve(client)  # first: a refusal leaves no orphan in S3
        try:
            images = [await upload.read() for upload in uploads]  # a spooled file: once
            digests = await content_digests(images) if front else []
        except BaseException:
            self._book.release(slot)
            raise
        # What the cache remembers is not the fleet's work: the scaler must not see it.
        queued = len(uploads) - (front.cache.remembered(digests) if front else 0)
        self.arriving += queued
        self._on_submit(queued)
        deadline_s = self._settings.aws_deadline_s
        deadline = asyncio.timeout(deadline_s)
        request_span = trace.get_current_span()  # the HTTP request's: it is the upload's
        if request_span.is_recording():
            request_span.set_attribute("iras.images", len(uploads))
        try:
            async with deadline:
                return await self._submit(uploads, images, digests, owner, manifest, slot, front)
        except _FAILURES as error:
            if deadline.expired():
                raise AwsUnavailable(
                    f"AWS did not store and queue the images within {deadline_s:g} s "
                    "(IRAS_AWS_DEADLINE_S)"
                ) from None
            raise AwsUnavailable(f"AWS could not store and queue the images: {error}") from None
        finally:
            self.arriving -= queued
            self._book.release(slot)  # the job's waiters (if any) pin it from here on

    async def _submit(
        self,
        uploads: Sequence[ImageFile],
        images: list[bytes],
        digests: list[str],
        owner: str | None,
        manifest: bool,
        slot: JobSlot,
        front: CacheFront | None,
    ) -> Job:
        job_id = uuid.uuid4().hex
        refs = [RequestRef(uuid.uuid4().hex, upload.name) for upload in uploads]
        stores = [
            self._store_image(ref, image, upload.info.media_type)
            for ref, image, upload in zip(refs, images, uploads, strict=True)
        ]
        if manifest:
            stores.append(self._store_manifest(job_id, refs, owner))
        self.storing += len(uploads)
        try:
            with TRACER.start_as_current_span("iras.store"):
                _, found = await asyncio.gather(
                    asyncio.gather(*stores),
                    asyncio.gather(*(front.cache.find(d) for d in digests)) if front else _none(),
                )
        except BaseException:
            self.storing -= len(uploads)
            self._sender.nudge()  # requests waiting for this job's company: it is not coming
            raise
        self.storing -= len(uploads)  # before sending: the last one stored sends at once
        job = self._book.add_job(job_id, refs, owner, slot)  # pinned until the slot's release
        if front is None:
            await self._send_or_forget(job_id, refs)
            return job
        plan = front.plan(refs, digests, found)
        front.take_off(plan)
        try:
            _, answers = await asyncio.gather(
                self._send_now(job_id, [ref for ref, _ in plan.leading]),
                front.write_answers(job_id, plan),
            )
        except BaseException:
            self._book.discard(job_id)  # refused: nobody was given its id
            front.abort(plan)
            raise
        front.deliver(answers)
        front.follow(job, plan)
        return job

    async def _send_or_forget(self, job_id: str, refs: list[RequestRef]) -> None:
        """Queue `refs`; when that fails, the job is forgotten (nobody was given its id)."""
        try:
            await self._send_now(job_id, refs)
        except BaseException:
            self._book.discard(job_id)
            raise

    async def _send_now(self, job_id: str, refs: list[RequestRef]) -> None:
        if refs:
            await self._send(job_id, refs, time.time())

    async def store_manifest(self, job: Job) -> None:
        """Store the manifest of a job submitted with `manifest=False`, now that it will be
        looked up after all (a course upload whose wait timed out: its owner is told to
        fetch the result, from whichever gateway, and only a manifest names the owner)."""
        await self._store_manifest(job.job_id, job.requests, job.owner)

    async def _send(self, job_id: str, refs: list[RequestRef], now: float) -> None:
        bodies = [
            encode_request(
                Request(
                    request_id=ref.request_id,
                    job_id=job_id,
                    key=input_key(ref.request_id),
                    name=ref.name,
                    reply_to=self._reply_queue_url,
                    submitted_at=now,
                )
            )
            for ref in refs
        ]
        with TRACER.start_as_current_span("iras.queue"):
            await self._sender.send(
                [traced_message(body, REQUEST_MAX_MESSAGE_BYTES) for body in bodies]
            )

    async def _store_image(self, ref: RequestRef, image: bytes, media_type: str) -> None:
        await self._aws.objects.put(
            self._settings.input_bucket, input_key(ref.request_id), image, content_type=media_type
        )

    async def _store_manifest(self, job_id: str, refs: list[RequestRef], owner: str | None) -> None:
        manifest = {
            "job_id": job_id,
            "owner": owner,
            "requests": [{"request_id": ref.request_id, "name": ref.name} for ref in refs],
        }
        await self._aws.objects.put(
            self._settings.records_bucket,
            job_key(job_id),
            json.dumps(manifest).encode(),
            content_type="application/json",
        )
