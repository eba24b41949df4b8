"""The gateway's own reply queue: created at start, drained into the job book, deleted at stop
(or kept, for a gateway with a fixed id that will be back for what arrives meanwhile).

One queue per gateway means several gateways run side by side and none takes another's
results. The leading gateway's queue also brings the other gateways' reports of their
uploads (`iras.messages.GatewayReport`), which go to `on_report`. One task long-polls it (several calls in flight under load), hands each result
to the `JobBook`, and deletes in batches. A result that cannot be parsed is logged and
deleted: it can never become valid.

Deletes wait up to `DELETE_WAIT_S` to share a DeleteMessageBatch of ten: at one image at
a time, each reply used to cost a receive and a delete of its own. The wait is far
below the queue's visibility timeout, and a reply that comes again anyway (the gateway
stopped before deleting it) is a duplicate the job book ignores.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from opentelemetry import trace

from iras.aws import BotocoreClient, MessageQueue, QueueMessage
from iras.aws.retry import retry_while_away
from iras.messages import (
    GATEWAY_REPORT_KIND,
    GatewayReport,
    MessageError,
    decode_gateway_report,
)
from iras.telemetry.propagation import TRACE_ATTRIBUTE_NAMES, extract_span_context
from iras.telemetry.tracing import start_linked_span, tracing_on
from iras.web.sender import BatchingSender

log = logging.getLogger(__name__)

ResultJson = dict[str, Any]

#: Longest a received reply waits for company before it is deleted (visibility: 30 s).
DELETE_WAIT_S = 1.0

#: Every reply queue's attributes: the same on every start, see `create_reply_queue`.
REPLY_QUEUE_ATTRIBUTES = {"MessageRetentionPeriod": str(24 * 3600), "VisibilityTimeout": "30"}

_QUEUE_EXISTS_CODES = {"QueueAlreadyExists", "QueueNameExists"}


async def create_reply_queue(sqs: BotocoreClient, name: str) -> str:
    """Create this gateway's reply queue, or find it again; results older than a day are of
    no use.

    CreateQueue returns an existing queue only when every attribute asked for is the
    queue's own, so they are constants: a gateway restarted with the same id (and other
    settings) gets its queue back with the replies waiting in it. That is why no long-poll
    wait is set here; every receive names its own.
    """
    try:
        response = await sqs.create_queue(QueueName=name, Attributes=REPLY_QUEUE_ATTRIBUTES)
    except ClientError as error:
        if error.response["Error"]["Code"] not in _QUEUE_EXISTS_CODES:
            raise
        raise LookupError(
            f"reply queue {name!r} exists with other attributes than "
            f"{REPLY_QUEUE_ATTRIBUTES} (made by another IRAS version?): delete it, or set "
            "another IRAS_GATEWAY_ID"
        ) from error
    return str(response["QueueUrl"])


async def delete_reply_queue(sqs: BotocoreClient, url: str) -> None:
    try:
        await sqs.delete_queue(QueueUrl=url)
    except (BotoCoreError, ClientError) as error:
        log.warning("could not delete reply queue %s: %s", url, error)


async def listen_for_replies(
    messages: MessageQueue,
    url: str,
    wait_s: int,
    deliver: Callable[[ResultJson], object],
    pollers: int = 2,
    on_report: Callable[[GatewayReport], object] = lambda report: None,
    on_receive: Callable[[], object] = lambda: None,
) -> None:
    """Long-poll `url` with `pollers` concurrent receives until cancelled; `on_receive`
    after each receive that came back (the readiness check watches for them)."""
    deleter = BatchingSender(
        functools.partial(messages.delete_batch, url), DELETE_WAIT_S, what="deleting replies"
    )
    try:
        polls = (
            _poll(messages, url, wait_s, deliver, on_report, on_receive, deleter)
            for _ in range(pollers)
        )
        await asyncio.gather(*polls)
    finally:
        await deleter.close()


async def _poll(
    messages: MessageQueue,
    url: str,
    wait_s: int,
    deliver: Callable[[ResultJson], object],
    on_report: Callable[[GatewayReport], object],
    on_receive: Callable[[], object],
    deleter: BatchingSender[str],
) -> None:
    names = TRACE_ATTRIBUTE_NAMES if tracing_on() else ()
    receive = functools.partial(
        messages.receive, url, max_messages=10, wait_s=wait_s, attribute_names=names
    )
    while True:  # the listener must outlive any outage: every failure is retried
        received = await retry_while_away(
            receive, on=Exception, failed="receiving replies failed", logger=log
        )
        on_receive()
        with _reply_span(received):
            for message in received:
                parsed = _parse(message.body)
                if isinstance(parsed, GatewayReport):
                    on_report(parsed)
                elif parsed is not None:
                    deliver(parsed)
        # A failed delete is logged: those replies come again and are ignored as duplicates.
        deleter.add([m.receipt_handle for m in received], wait=False)


def _reply_span(received: Sequence[QueueMessage]) -> AbstractContextManager[object]:
    """`iras.reply`, the handling of one receive call's replies (`start_linked_span`'s:
    a child of the first traced reply's `iras.publish`, linking each); nothing when no
    reply carried a context (tracing off, here or in the worker)."""
    span = start_linked_span("iras.reply", [extract_span_context(m.attributes) for m in received])
    if span is None:
        return contextlib.nullcontext()
    return trace.use_span(span, end_on_exit=True)


def _parse(body: str) -> ResultJson | GatewayReport | None:
    try:
        result = json.loads(body)
    except json.JSONDecodeError:
        result = None
    if isinstance(result, dict) and result.get("kind") == GATEWAY_REPORT_KIND:
        try:
            return decode_gateway_report(result)
        except MessageError as error:
            log.error("dropping a reply: %s", error)
            return None
    if not isinstance(result, dict) or not isinstance(result.get("request_id"), str):
        log.error("dropping a reply that is not a result: %.200r", body)
        return None
    return result
