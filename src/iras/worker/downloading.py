"""Fetch a batch's images from the input bucket, all at once.

The downloads of one batch run concurrently, and while they run the model is busy with
the previous batch: on a full queue the worker's CPU goes to decoding and inference, not
to waiting on S3. A missing object gets an error result (it will never appear); any other
failure sends the message back to be tried again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from botocore.exceptions import ClientError

from iras.aws import ObjectStore
from iras.telemetry.log_context import request_ids
from iras.worker.batch import Batch
from iras.worker.receiving import Received

log = logging.getLogger(__name__)

_MISSING_OBJECT_CODES = {"NoSuchKey", "404", "NotFound"}


class InputMissing(Exception):
    """The request's image is not in the input bucket (expired, deleted, never written)."""


async def download_batch(objects: ObjectStore, bucket: str, messages: Sequence[Received]) -> Batch:
    """Download every request's image; sort the messages by what happens to them next."""
    batch = Batch()
    requests = [m for m in messages if m.request is not None]
    batch.malformed = [m for m in messages if m.request is None]
    started = time.perf_counter()
    bodies = await asyncio.gather(
        *(_download(objects, bucket, m.request.key) for m in requests if m.request),
        return_exceptions=True,
    )
    batch.download_ms = (time.perf_counter() - started) * 1000.0
    for received, body in zip(requests, bodies, strict=True):
        if isinstance(body, bytes):
            batch.images.append((received, body))
        elif isinstance(body, InputMissing):
            batch.missing.append(received)
        elif isinstance(body, Exception):
            log.warning(
                "download of %s failed, will retry: %s",
                received.message_id,
                body,
                extra=request_ids(received.request),
            )
            batch.retry.append(received)
        else:
            raise body  # cancellation and other BaseExceptions pass through
    return batch


async def _download(objects: ObjectStore, bucket: str, key: str) -> bytes:
    try:
        return await objects.get(bucket, key)
    except ClientError as error:
        if error.response["Error"]["Code"] in _MISSING_OBJECT_CODES:
            raise InputMissing(f"s3://{bucket}/{key} does not exist") from None
        raise
