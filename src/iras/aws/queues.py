"""SQS batch calls, ten entries at a time, with the entries that failed reported back.

Every SQS call costs a round trip (and on the embedded AWS ~7.5 ms of its CPU), so IRAS
sends, deletes and changes visibility in batches of ten, the most SQS allows. A batch
call can succeed for some entries and fail for others; callers get the failures back and
decide (a message not deleted is simply delivered again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from iras.aws import AwsClient

log = logging.getLogger(__name__)

#: The most entries one SQS batch call accepts.
SQS_BATCH_LIMIT = 10

#: Error codes SQS gives for a queue that does not exist (the JSON and the query protocol).
MISSING_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})

T = TypeVar("T")


def chunked(items: Sequence[T], size: int = SQS_BATCH_LIMIT) -> Iterator[Sequence[T]]:
    """Consecutive slices of `items`, each at most `size` long."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def queue_depth(sqs: AwsClient, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue, as SQS approximates them."""
    response = await sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    attributes = response["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


async def send_batch(sqs: AwsClient, queue_url: str, bodies: Sequence[str]) -> list[int]:
    """Send `bodies` to `queue_url`; return the indexes of those that were not sent."""
    return await _batched(
        sqs.send_message_batch,
        queue_url,
        [{"MessageBody": body} for body in bodies],
    )


async def delete_batch(sqs: AwsClient, queue_url: str, receipt_handles: Sequence[str]) -> list[int]:
    """Delete messages by receipt handle; return the indexes of those not deleted."""
    return await _batched(
        sqs.delete_message_batch,
        queue_url,
        [{"ReceiptHandle": handle} for handle in receipt_handles],
    )


async def change_visibility_batch(
    sqs: AwsClient, queue_url: str, receipt_handles: Sequence[str], timeout_s: int
) -> list[int]:
    """Set the visibility timeout of held messages (0 hands them back at once)."""
    return await _batched(
        sqs.change_message_visibility_batch,
        queue_url,
        [{"ReceiptHandle": handle, "VisibilityTimeout": timeout_s} for handle in receipt_handles],
    )


async def _batched(call: Any, queue_url: str, entries: list[dict[str, Any]]) -> list[int]:
    """Make one call per ten entries, concurrently; the indexes of failed entries, sorted."""

    async def one_call(offset: int, chunk: Sequence[dict[str, Any]]) -> list[int]:
        numbered = [{"Id": str(offset + i), **entry} for i, entry in enumerate(chunk)]
        response = await call(QueueUrl=queue_url, Entries=numbered)
        failures = response.get("Failed", [])
        for failure in failures:
            log.warning(
                "SQS %s entry failed on %s: %s %s",
                call.__name__,
                queue_url,
                failure.get("Code"),
                failure.get("Message"),
            )
        return [int(failure["Id"]) for failure in failures]

    calls = (
        one_call(index * SQS_BATCH_LIMIT, chunk) for index, chunk in enumerate(chunked(entries))
    )
    return sorted(i for failed in await asyncio.gather(*calls) for i in failed)
