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

from opentelemetry.trace import SpanContext

from iras.aws import MessageQueue, QueueMessage
from iras.aws.queues import SQS_BATCH_LIMIT
from iras.aws.retry import retry_while_away
from iras.messages import MessageError, RefusedRequest, Request, decode_request
from iras.telemetry.propagation import TRACE_ATTRIBUTE_NAMES, extract_span_context
from iras.telemetry.tracing import start_linked_span, tracing_on
from iras.worker.inbox import Inbox

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Received:
    """One received message: its request, or why it is not one.

    A message that is not a request (`request` None) may still be answerable: `refused`
    then holds its address (ids and reply queue), for an error result of its own.
    """

    receipt_handle: str
    message_id: str
    request: Request | None
    problem: str | None
    receive_count: int
    received_at: float  # wall clock, comparable with Request.submitted_at
    refused: Request | None = None
    trace_context: SpanContext | None = None  # the gateway's `iras.queue` span, if traced

    @property
    def reply_to(self) -> str | None:
        """Where this message's result goes (None: only to the output bucket)."""
        addressed = self.request or self.refused
        return addressed.reply_to if addressed else None


def parse_message(message: QueueMessage, received_at: float) -> Received:
    """Turn an SQS message into a `Received`; a malformed body is kept, with its problem.

    Whatever a body holds, this raises nothing: a receive brings up to ten messages, and
    one crafted body must not cost the other nine (they would be hidden, received again
    and dead-lettered with it).
    """
    request: Request | None = None
    refused: Request | None = None
    problem: str | None = None
    try:
        request = decode_request(message.body)
    except RefusedRequest as error:
        refused, problem = error.request, str(error)
    except MessageError as error:
        problem = str(error)
    except Exception as error:  # a decoder bug: this message is malformed, the rest go on
        log.exception("decoding message %s failed", message.message_id)
        problem = f"undecodable message: {error!r}"
    return Received(
        receipt_handle=message.receipt_handle,
        message_id=message.message_id,
        request=request,
        problem=problem,
        receive_count=message.receive_count,
        received_at=received_at,
        refused=refused,
        trace_context=extract_span_context(message.attributes),
    )


def record_receive_span(received: Sequence[Received], started_ns: int) -> None:
    """The `iras.receive` span of one receive call (`start_linked_span`'s), none when no
    message came traced: from the call's start, or from the first message's submission
    if later, since a long poll may have waited long before anything came, until now."""
    contexts = [message.trace_context for message in received]
    if all(context is None for context in contexts):  # untraced (or nothing came): no span
        return
    submitted = min(m.request.submitted_at if m.request else 0.0 for m in received)
    start = max(started_ns, int(submitted * 1e9))
    span = start_linked_span("iras.receive", contexts, start_time=start)
    if span is not None:
        if span.is_recording():  # above 1: a request came again (a worker died, or was slow)
            span.set_attribute("iras.receive_count", max(m.receive_count for m in received))
        span.end()


async def receive_until(
    stopping: asyncio.Event,
    messages: MessageQueue,
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
    A reservation is always given back, even when the receive is cancelled mid-poll,
    and while a failed receive waits to be retried.
    """

    names = TRACE_ATTRIBUTE_NAMES if tracing_on() else ()

    async def receive() -> tuple[int, list[Received]] | None:
        """One receive into reserved room: (room, messages); None once stopping."""
        if stopping.is_set():  # set while a failed receive waited to be retried
            return None
        room = await inbox.reserve(SQS_BATCH_LIMIT)
        if stopping.is_set():  # woken by the room a stopping worker made: receive no more
            inbox.release(room)
            return None
        try:
            started_ns = time.time_ns()
            got = await messages.receive(
                queue_url,
                max_messages=room,
                wait_s=wait_s,
                visibility_timeout_s=visibility_timeout_s,
                attribute_names=names,
            )
            now = time.time()
            parsed = [parse_message(message, now) for message in got]
            record_receive_span(parsed, started_ns)
            return room, parsed
        except BaseException:
            inbox.release(room)
            raise

    failed = f"receive from {queue_url} failed"
    while not stopping.is_set():  # a receiver must outlive any outage: failures are retried
        got = await retry_while_away(receive, on=Exception, failed=failed, logger=log)
        if got is None:
            return
        room, received = got
        on_received(received)
        inbox.put(received, room)
