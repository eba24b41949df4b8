"""Long-poll receivers that keep the worker's inbox stocked.

Several receivers run at once, each asking for as many messages as the inbox has room
for (at most ten): one receive call returns whatever is visible, so parallel calls fill a
batch faster on a busy queue, and on an idle queue they park cheaply in long polls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from iras.aws import AwsClient
from iras.aws.queues import SQS_BATCH_LIMIT
from iras.aws.retry import backoff_s
from iras.messages import MessageError, Request, decode_request
from iras.worker.inbox import Inbox

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Received:
    """One received message: its request, or why it is not one."""

    receipt_handle: str
    message_id: str
    request: Request | None
    problem: str | None
    receive_count: int
    received_at: float  # wall clock, comparable with Request.submitted_at


def parse_message(raw: dict[str, Any], received_at: float) -> Received:
    """Turn an SQS message into a `Received`; a malformed body is kept, with its problem."""
    try:
        request: Request | None = decode_request(raw.get("Body", ""))
        problem = None
    except MessageError as error:
        request, problem = None, str(error)
    return Received(
        receipt_handle=raw["ReceiptHandle"],
        message_id=raw.get("MessageId", ""),
        request=request,
        problem=problem,
        receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
        received_at=received_at,
    )


async def receive_until(
    stopping: asyncio.Event,
    sqs: AwsClient,
    queue_url: str,
    inbox: Inbox[Received],
    wait_s: int,
    visibility_timeout_s: int,
    on_received: Callable[[Sequence[Received]], None],
) -> None:
    """Receive into `inbox` until `stopping` is set; `on_received` sees each message first.

    A receive in flight when `stopping` is set still completes and delivers: on a busy
    queue SQS has already taken its messages, and a cancelled call would leave them hidden
    until their visibility timeout. (The caller may cancel an idle long poll that does not
    return soon; it has nothing.)

    The visibility timeout is asked for explicitly, whatever the queue's default, so that
    the worker's own record of when each message reappears is exact.

    Errors are logged and retried with backoff: a worker outlives a flaky network.
    A reservation is always given back, even when the receive is cancelled mid-poll.
    """
    failures = 0
    while not stopping.is_set():
        room = await inbox.reserve(SQS_BATCH_LIMIT)
        if stopping.is_set():  # woken by the room a stopping worker made: receive no more
            inbox.release(room)
            return
        received: list[Received] = []
        try:
            response = await sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=room,
                WaitTimeSeconds=wait_s,
                VisibilityTimeout=visibility_timeout_s,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
            now = time.time()
            received = [parse_message(raw, now) for raw in response.get("Messages", [])]
            failures = 0
        except Exception as error:  # a receiver must outlive any one bad call
            failures += 1
            delay_s = backoff_s(failures)
            log.warning(
                "receive from %s failed (%s); retrying in %.1f s", queue_url, error, delay_s
            )
            inbox.release(room)
            await asyncio.sleep(delay_s)
            continue
        except BaseException:
            inbox.release(room)
            raise
        on_received(received)
        inbox.put(received, room)
