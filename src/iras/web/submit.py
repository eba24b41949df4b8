"""Turn validated uploads into a job: images into S3, a manifest, requests onto SQS.

The order keeps promises: images and the job manifest are stored before any request is
queued (a worker never looks for an image that is not there yet), and the job is in the
book before its requests go out (a fast result always finds its job).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Sequence

from iras.aws import AwsClients
from iras.config import Settings
from iras.keys import input_key, job_key
from iras.messages import Request, encode_request
from iras.web.jobs import Job, JobBook, RequestRef
from iras.web.sender import BatchingSender
from iras.web.uploads import ImageFile


class Submitter:
    """Stores uploads and queues their requests, naming this gateway's reply queue."""

    def __init__(
        self,
        settings: Settings,
        aws: AwsClients,
        book: JobBook,
        sender: BatchingSender,
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
        self, uploads: Sequence[ImageFile], owner: str | None = None, *, manifest: bool = True
    ) -> Job:
        """Store and queue `uploads` as one job; raise on a storage or queue failure.

        `manifest=False` skips the job's manifest object (one S3 call): the course
        protocol's single-image jobs are never looked up by job id.
        """
        self.arriving += len(uploads)
        self._on_submit(len(uploads))
        try:
            return await self._submit(uploads, owner, manifest)
        finally:
            self.arriving -= len(uploads)

    async def _submit(self, uploads: Sequence[ImageFile], owner: str | None, manifest: bool) -> Job:
        job_id = uuid.uuid4().hex
        refs = [RequestRef(uuid.uuid4().hex, upload.name) for upload in uploads]
        stores = [self._store_image(ref, upload) for ref, upload in zip(refs, uploads, strict=True)]
        if manifest:
            stores.append(self._store_manifest(job_id, refs, owner))
        self.storing += len(uploads)
        try:
            await asyncio.gather(*stores)
        except BaseException:
            self.storing -= len(uploads)
            self._sender.nudge()  # requests waiting for this job's company: it is not coming
            raise
        self.storing -= len(uploads)  # before sending: the last one stored sends at once
        job = self._book.add_job(job_id, refs, owner)
        now = time.time()
        await self._sender.send(
            [
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
        )
        return job

    async def _store_image(self, ref: RequestRef, upload: ImageFile) -> None:
        await self._aws.s3.put_object(
            Bucket=self._settings.input_bucket,
            Key=input_key(ref.request_id),
            Body=upload.blob,
            ContentType=upload.info.media_type,
        )

    async def _store_manifest(self, job_id: str, refs: list[RequestRef], owner: str | None) -> None:
        manifest = {
            "job_id": job_id,
            "owner": owner,
            "requests": [{"request_id": ref.request_id, "name": ref.name} for ref in refs],
        }
        await self._aws.s3.put_object(
            Bucket=self._settings.output_bucket,
            Key=job_key(job_id),
            Body=json.dumps(manifest).encode(),
            ContentType="application/json",
        )
