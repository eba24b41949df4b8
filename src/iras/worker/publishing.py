"""Make a batch's results durable, tell the requesters, then forget the requests.

What makes IRAS lose nothing is that a request is deleted from the request queue only
once its result is in the output bucket (so it survives any gateway) and on its reply
queue (so a waiting client hears). The bucket and the reply queue are written at the
same time: they do not depend on each other, and one image at a time, the writes in a
row cost the requester ~8 ms of its ~50 ms. A step that fails leaves its message
undeleted, to be delivered again; writing the same result or reply twice is harmless
(the gateway ignores a second reply), and a client answered from a reply whose write to
the bucket failed finds the result there once the request comes round again.

Each item succeeds or fails alone: whatever one result's store or reply raises, AWS
errors or any other, costs that item only (it stays undeleted and comes again, to be
dead-lettered alone if it always fails), never the other results of its batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from botocore.exceptions import ClientError, ParamValidationError

from iras.aws import AwsClients
from iras.aws.errors import AWS_ERRORS
from iras.aws.queues import MISSING_QUEUE_CODES
from iras.config import Settings
from iras.messages import Result, encode_result, result_objects
from iras.telemetry.log_context import request_ids
from iras.telemetry.propagation import traced_message
from iras.worker.receiving import Received

log = logging.getLogger(__name__)

#: SQS's largest message (256 KiB), a reply's bound with its trace context.
SQS_MAX_MESSAGE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A received request, the result to publish for it, and that result's JSON (encoded
    once: the output bucket and the reply queue get the same bytes).

    `data` is None when the JSON has no UTF-8 (a lone surrogate that got past decoding):
    such an item can be neither stored nor sent, and fails alone, before any call.
    """

    received: Received
    result: Result
    body: str = field(init=False)
    data: bytes | None = field(init=False)

    def __post_init__(self) -> None:
        body = encode_result(self.result)
        try:
            data: bytes | None = body.encode("utf-8")
        except UnicodeEncodeError:
            data = None
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "data", data)


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
        """Store one result; False if it must be tried again. Whatever fails here fails
        this item alone (`publish` isolates items): a bug or an unfit field in one result
        is logged with its request id, and its message comes round again."""
        request_id = item.result.request_id
        ids = request_ids(item.result)
        if item.data is None:
            log.error(
                "result %s is not UTF-8: not stored; its request will come again",
                request_id,
                extra=ids,
            )
            return False
        try:
            await self._put_result(item.result, item.data)
        except AWS_ERRORS as error:
            log.warning("storing result %s failed: %s", request_id, error, extra=ids)
            return False
        except Exception:
            log.exception(
                "storing result %s failed; its request will come again", request_id, extra=ids
            )
            return False
        return True

    async def _put_result(self, result: Result, data: bytes) -> None:
        """The result object (among IRAS's records) and, for the course's graders, the
        label under the name (in the output bucket)."""
        writes = result_objects(self._settings, result.request_id, result.name, result.label, data)
        await asyncio.gather(
            *(
                self._aws.objects.put(bucket, key, blob, content_type=media)
                for bucket, key, blob, media in writes
            )
        )

    async def _reply(self, outgoing: Sequence[Outgoing]) -> list[Outgoing]:
        by_queue: dict[str | None, list[Outgoing]] = defaultdict(list)
        for item in outgoing:
            queue_url = item.received.reply_to
            if queue_url is None or isinstance(queue_url, str):
                by_queue[queue_url].append(item)
            else:  # decoding refuses these; a bug must not fail the others of the batch
                log.error(
                    "result %s names no reply queue: %r",
                    item.result.request_id,
                    queue_url,
                    extra=request_ids(item.result),
                )
        answered = await asyncio.gather(
            *(self._reply_to(queue_url, items) for queue_url, items in by_queue.items())
        )
        return [item for items in answered for item in items]

    async def _reply_to(self, queue_url: str | None, items: list[Outgoing]) -> list[Outgoing]:
        """Send results to one reply queue; return the items that need no retry.

        A batch refused for what it carries, not because AWS is away (a `TypeError`, a
        body botocore will not send), is sent again one result at a time, so that only
        the item at fault stays undeleted, logged with its request id.
        """
        if queue_url is None:
            return items  # nobody listens: the output bucket is the answer
        for item in items:
            if item.data is None:
                log.error(
                    "result %s is not UTF-8: not sent",
                    item.result.request_id,
                    extra=request_ids(item.result),
                )
        items = [item for item in items if item.data is not None]
        if not items:
            return []
        try:
            replies = [traced_message(item.body, SQS_MAX_MESSAGE_BYTES) for item in items]
            failed = set(await self._aws.messages.send_batch(queue_url, replies))
        except ClientError as error:
            if error.response["Error"]["Code"] in MISSING_QUEUE_CODES:
                log.info("reply queue %s is gone; results stay in the output bucket", queue_url)
                return items
            log.warning("replying to %s failed: %s", queue_url, error)
            return []
        except Exception as error:
            if isinstance(error, AWS_ERRORS) and not isinstance(error, ParamValidationError):
                log.warning("replying to %s failed: %s", queue_url, error)
                return []  # AWS away: one call each would only wait longer
            if len(items) == 1:
                log.exception(
                    "replying %s to %s failed; its request will come again",
                    items[0].result.request_id,
                    queue_url,
                    extra=request_ids(items[0].result),
                )
                return []
            log.warning(
                "replying %d results to %s failed (%r): sending them one at a time",
                len(items),
                queue_url,
                error,
            )
            alone = await asyncio.gather(*(self._reply_to(queue_url, [item]) for item in items))
            return [item for answered in alone for item in answered]
        return [item for i, item in enumerate(items) if i not in failed]
