"""Make a batch's results durable, tell the requesters, then forget the requests.

What makes IRAS lose nothing is that a request is deleted from the request queue only
once its result is in the output bucket (so it survives any gateway) and on its reply
queue (so a waiting client hears). The bucket and the reply queue are written at the
same time: they do not depend on each other, and one image at a time, the writes in a
row cost the requester ~8 ms of its ~50 ms. A step that fails leaves its message
undeleted, to be delivered again; writing the same result or reply twice is harmless
(the gateway ignores a second reply), and a client answered from a reply whose write to
the bucket failed finds the result there once the request comes round again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from iras.aws import AwsClients
from iras.aws.errors import AWS_ERRORS
from iras.aws.queues import MISSING_QUEUE_CODES
from iras.config import Settings
from iras.messages import Result, encode_result, name_stem, result_key
from iras.worker.receiving import Received

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A received request, the result to publish for it, and that result's JSON (encoded
    once: the output bucket and the reply queue get the same bytes)."""

    received: Received
    result: Result
    body: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "body", encode_result(self.result))


class Publisher:
    """Stores results, sends replies and deletes requests for one worker."""

    def __init__(self, settings: Settings, aws: AwsClients, request_queue_url: str) -> None:
        self._settings = settings
        self._aws = aws
        self._request_queue_url = request_queue_url

    async def publish(self, outgoing: Sequence[Outgoing]) -> list[Received]:
        """Publish `outgoing`; return the messages that were deleted (fully handled)."""
        stored, replied = await asyncio.gather(self._store(outgoing), self._reply(outgoing))
        stored_ids = {id(item) for item in stored}
        done = [item.received for item in replied if id(item) in stored_ids]
        return await self.delete(done)

    async def delete(self, messages: Sequence[Received]) -> list[Received]:
        """Delete `messages` from the request queue; return those that were deleted."""
        if not messages:
            return []
        try:
            failed = set(
                await self._aws.messages.delete_batch(
                    self._request_queue_url, [message.receipt_handle for message in messages]
                )
            )
        except AWS_ERRORS as error:
            log.warning("deleting %d requests failed: %s", len(messages), error)
            return []
        return [message for i, message in enumerate(messages) if i not in failed]

    async def _store(self, outgoing: Sequence[Outgoing]) -> list[Outgoing]:
        written = await asyncio.gather(*(self._store_one(item) for item in outgoing))
        return [item for item, ok in zip(outgoing, written, strict=True) if ok]

    async def _store_one(self, item: Outgoing) -> bool:
        objects, bucket, result = self._aws.objects, self._settings.output_bucket, item.result
        puts = [
            objects.put(
                bucket,
                result_key(self._settings, result.request_id),
                item.body.encode("utf-8"),
                content_type="application/json",
            )
        ]
        stem = name_stem(result.name)
        if self._settings.write_name_objects and result.label is not None and stem:
            puts.append(
                objects.put(
                    bucket,
                    stem,
                    result.label.encode("utf-8"),
                    content_type="text/plain; charset=utf-8",
                )
            )
        try:
            await asyncio.gather(*puts)
        except AWS_ERRORS as error:
            log.warning("storing result %s failed: %s", result.request_id, error)
            return False
        return True

    async def _reply(self, outgoing: Sequence[Outgoing]) -> list[Outgoing]:
        by_queue: dict[str | None, list[Outgoing]] = defaultdict(list)
        for item in outgoing:
            request = item.received.request
            by_queue[request.reply_to if request else None].append(item)
        answered = await asyncio.gather(
            *(self._reply_to(queue_url, items) for queue_url, items in by_queue.items())
        )
        return [item for items in answered for item in items]

    async def _reply_to(self, queue_url: str | None, items: list[Outgoing]) -> list[Outgoing]:
        """Send results to one reply queue; return the items that need no retry."""
        if queue_url is None:
            return items  # nobody listens: the output bucket is the answer
        try:
            failed = set(await self._aws.messages.send_batch(queue_url, [i.body for i in items]))
        except ClientError as error:
            if error.response["Error"]["Code"] in MISSING_QUEUE_CODES:
                log.info("reply queue %s is gone; results stay in the output bucket", queue_url)
                return items
            log.warning("replying to %s failed: %s", queue_url, error)
            return []
        except AWS_ERRORS as error:
            log.warning("replying to %s failed: %s", queue_url, error)
            return []
        return [item for i, item in enumerate(items) if i not in failed]
