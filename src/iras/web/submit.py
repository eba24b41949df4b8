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
from iras.web.jobs import Job, JobBook, JobSlot, RequestRef
from iras.web.sender import BatchingSender, SendFailed
from iras.web.uploads import ImageFile

#: What storing and queueing raise when AWS is away, refusing or slow.
_FAILURES: tuple[type[Exception], ...] = (*AWS_ERRORS, SendFailed)


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
    ) -> None:
        self._settings = settings
        self._aws = aws
        self._book = book
        self._sender = sender
        self._reply_queue_url = reply_queue_url
        self._on_submit = on_submit
        self.arriving = 0  # images being stored and queued right now (the scaler counts them)
        self.storing = 0  # of those, images whose upload to S3 has not finished yet

    async def submit(
        self,
        uploads: Sequence[ImageFile],
        owner: str | None = None,
        *,
        manifest: bool = True,
        client: str | None = None,
    ) -> Job:
        """Store and queue `uploads` as one job of `client` within `aws_deadline_s`; raise
        `AwsUnavailable` when AWS fails or is too slow, and `TooManyJobs` (before anything
        is stored) when the client's share of the job book is full.

        `manifest=False` skips the job's manifest object (one S3 call): the course
        protocol's single-image jobs are never looked up by job id.
        """
        slot = self._book.reserve(client)  # first: a refusal leaves no orphan in S3
        self.arriving += len(uploads)
        self._on_submit(len(uploads))
        deadline_s = self._settings.aws_deadline_s
        deadline = asyncio.timeout(deadline_s)
        request_span = trace.get_current_span()  # the HTTP request's: it is the upload's
        if request_span.is_recording():
            request_span.set_attribute("iras.images", len(uploads))
        try:
            async with deadline:
                return await self._submit(uploads, owner, manifest, slot)
        except _FAILURES as error:
            if deadline.expired():
                raise AwsUnavailable(
                    f"AWS did not store and queue the images within {deadline_s:g} s "
                    "(IRAS_AWS_DEADLINE_S)"
                ) from None
            raise AwsUnavailable(f"AWS could not store and queue the images: {error}") from None
        finally:
            self.arriving -= len(uploads)
            self._book.release(slot)  # the job's waiters (if any) pin it from here on

    async def _submit(
        self, uploads: Sequence[ImageFile], owner: str | None, manifest: bool, slot: JobSlot
    ) -> Job:
        job_id = uuid.uuid4().hex
        refs = [RequestRef(uuid.uuid4().hex, upload.name) for upload in uploads]
        stores = [self._store_image(ref, upload) for ref, upload in zip(refs, uploads, strict=True)]
        if manifest:
            stores.append(self._store_manifest(job_id, refs, owner))
        self.storing += len(uploads)
        try:
            with TRACER.start_as_current_span("iras.store"):
                await asyncio.gather(*stores)
        except BaseException:
            self.storing -= len(uploads)
            self._sender.nudge()  # requests waiting for this job's company: it is not coming
            raise
        self.storing -= len(uploads)  # before sending: the last one stored sends at once
        job = self._book.add_job(job_id, refs, owner, slot)  # pinned until the slot's release
        now = time.time()
        try:
            await self._send(job_id, refs, now)
        except BaseException:
            self._book.discard(job_id)  # refused: nobody was given its id
            raise
        return job

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

    async def _store_image(self, ref: RequestRef, upload: ImageFile) -> None:
        await self._aws.objects.put(
            self._settings.input_bucket,
            input_key(ref.request_id),
            await upload.read(),  # a spooled file is read only now, once
            content_type=upload.info.media_type,
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
