"""SQS's message calls as `MessageQueue` methods, whichever way each call is sent.

Every SQS call costs a round trip (and on the embedded AWS ~7.5 ms of its CPU), so IRAS
sends, deletes and changes visibility in batches of ten, the most SQS allows. A batch
call can succeed for some entries and fail for others; callers get the failures back and
decide (a message not deleted is simply delivered again).

`SqsCalls` holds what both implementations share, the parameters of each call and the
reading of its answer, in the JSON shapes of SQS's JSON protocol (which are botocore's
parameters and results too); a subclass only says how one call is made (`_request`): on
the lean path (`iras.aws.lean.sqs`) or on botocore (`iras.aws.boto`).
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from botocore import xform_name

from iras.aws.types import OutboundMessage, QueueDepth, QueueMessage

log = logging.getLogger(__name__)

#: The most entries one SQS batch call accepts.
SQS_BATCH_LIMIT = 10

#: Error codes SQS gives for a queue that does not exist (the JSON and the query protocol).
MISSING_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})

_DEPTH_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

T = TypeVar("T")


def chunked(items: Sequence[T], size: int = SQS_BATCH_LIMIT) -> Iterator[Sequence[T]]:
    """Consecutive slices of `items`, each at most `size` long."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def send_entry(message: str | OutboundMessage) -> dict[str, Any]:
    """A SendMessageBatch entry (without its Id): a body, and its attributes if any."""
    if isinstance(message, str):
        return {"MessageBody": message}
    entry: dict[str, Any] = {"MessageBody": message.body}
    if message.attributes:
        entry["MessageAttributes"] = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in message.attributes.items()
        }
    return entry


def string_attributes(raw: dict[str, Any] | None) -> dict[str, str]:
    """A received message's String attributes, by name (others are IRAS's none)."""
    if not raw:
        return {}
    return {
        name: value["StringValue"]
        for name, value in raw.items()
        if isinstance(value, dict) and isinstance(value.get("StringValue"), str)
    }


class SqsCalls(abc.ABC):
    """A `MessageQueue` made of SQS calls; subclasses make each call (`_request`)."""

    @abc.abstractmethod
    async def _request(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Make one SQS call (`operation` as SQS names it: "ReceiveMessage") with `params`;
        return its result. Both in the JSON shapes SQS and botocore share."""

    async def send_batch(
        self, queue_url: str, bodies: Sequence[str | OutboundMessage]
    ) -> list[int]:
        entries = [send_entry(body) for body in bodies]
        return await self._batched("SendMessageBatch", queue_url, entries)

    async def receive(
        self,
        queue_url: str,
        *,
        max_messages: int = 10,
        wait_s: int | None = None,
        visibility_timeout_s: int | None = None,
        attribute_names: Sequence[str] = (),
    ) -> list[QueueMessage]:
        params: dict[str, Any] = {
            "QueueUrl": queue_url,
            "MaxNumberOfMessages": max_messages,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if attribute_names:
            params["MessageAttributeNames"] = list(attribute_names)
        if wait_s is not None:
            params["WaitTimeSeconds"] = wait_s
        if visibility_timeout_s is not None:
            params["VisibilityTimeout"] = visibility_timeout_s
        response = await self._request("ReceiveMessage", params)
        return [
            QueueMessage(
                body=raw.get("Body", ""),
                receipt_handle=raw["ReceiptHandle"],
                message_id=raw.get("MessageId", ""),
                receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                attributes=string_attributes(raw.get("MessageAttributes")),
            )
            for raw in response.get("Messages", ())
        ]

    async def delete_batch(self, queue_url: str, receipt_handles: Sequence[str]) -> list[int]:
        entries = [{"ReceiptHandle": handle} for handle in receipt_handles]
        return await self._batched("DeleteMessageBatch", queue_url, entries)

    async def change_visibility_batch(
        self, queue_url: str, receipt_handles: Sequence[str], timeout_s: int
    ) -> list[int]:
        entries = [
            {"ReceiptHandle": handle, "VisibilityTimeout": timeout_s} for handle in receipt_handles
        ]
        return await self._batched("ChangeMessageVisibilityBatch", queue_url, entries)

    async def depth(self, queue_url: str) -> QueueDepth:
        params = {"QueueUrl": queue_url, "AttributeNames": _DEPTH_ATTRIBUTES}
        attributes = (await self._request("GetQueueAttributes", params))["Attributes"]
        return QueueDepth(
            visible=int(attributes["ApproximateNumberOfMessages"]),
            in_flight=int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    async def _batched(
        self, operation: str, queue_url: str, entries: list[dict[str, Any]]
    ) -> list[int]:
        """One call per ten entries, concurrently; the indexes of failed entries, sorted."""

        async def one_call(offset: int, chunk: Sequence[dict[str, Any]]) -> list[int]:
            numbered = [{"Id": str(offset + i), **entry} for i, entry in enumerate(chunk)]
            response = await self._request(operation, {"QueueUrl": queue_url, "Entries": numbered})
            failures = response.get("Failed", ())
            for failure in failures:
                log.warning(
                    "SQS %s entry failed on %s: %s %s",
                    xform_name(operation),
                    queue_url,
                    failure.get("Code"),
                    failure.get("Message"),
                )
            return sorted(int(failure["Id"]) for failure in failures)

        if not entries:
            return []
        if len(entries) <= SQS_BATCH_LIMIT:  # the usual case: no task for a single call
            return await one_call(0, entries)
        calls = (
            one_call(index * SQS_BATCH_LIMIT, chunk) for index, chunk in enumerate(chunked(entries))
        )
        return sorted(i for failed in await asyncio.gather(*calls) for i in failed)
