"""Coalesce concurrent request sends into `SendMessageBatch` calls.

A hundred users uploading at once would cost a hundred SendMessage calls; gathered for a
few milliseconds they cost ten. Each message is paired with a future, flushed when ten
are waiting or `wait_s` after the first, and every future of a failed call gets the
error (the batcher of Ray Serve, applied to SQS). It knows nothing of what it sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from iras.aws import AwsClient
from iras.sqs import SQS_BATCH_LIMIT, send_batch

log = logging.getLogger(__name__)


class SendFailed(RuntimeError):
    """SQS did not accept a message."""


@dataclass(slots=True)
class _Pending:
    body: str
    sent: asyncio.Future[None]


class BatchingSender:
    """Send message bodies to one queue, ten per call, waiting at most `wait_s` to fill."""

    def __init__(self, sqs: AwsClient, queue_url: str, wait_s: float) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._wait_s = wait_s
        self._pending: list[_Pending] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self.calls = 0

    async def send(self, bodies: Sequence[str]) -> None:
        """Send `bodies`; return once SQS accepted all of them, or raise `SendFailed`."""
        loop = asyncio.get_running_loop()
        entries = [_Pending(body, loop.create_future()) for body in bodies]
        self._pending.extend(entries)
        while len(self._pending) >= SQS_BATCH_LIMIT:
            self._flush_now()
        if self._pending and self._timer is None:
            if self._wait_s <= 0:
                self._flush_now()
            else:
                self._timer = loop.call_later(self._wait_s, self._flush_now)
        await asyncio.gather(*(entry.sent for entry in entries))

    async def close(self) -> None:
        """Send what is pending and wait for calls in flight."""
        while self._pending:
            self._flush_now()
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    def _flush_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        chunk, self._pending = self._pending[:SQS_BATCH_LIMIT], self._pending[SQS_BATCH_LIMIT:]
        if not chunk:
            return
        task = asyncio.get_running_loop().create_task(self._send_chunk(chunk))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)
        if self._pending and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._wait_s, self._flush_now)

    async def _send_chunk(self, chunk: list[_Pending]) -> None:
        self.calls += 1
        try:
            failed = set(await send_batch(self._sqs, self._queue_url, [e.body for e in chunk]))
        except Exception as error:  # every waiter learns of the failure
            for entry in chunk:
                with contextlib.suppress(asyncio.InvalidStateError):
                    entry.sent.set_exception(
                        SendFailed(f"sending to the request queue failed: {error}")
                    )
            return
        for index, entry in enumerate(chunk):
            if entry.sent.done():
                continue
            if index in failed:
                entry.sent.set_exception(SendFailed("the request queue refused the message"))
            else:
                entry.sent.set_result(None)
