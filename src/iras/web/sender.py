"""Coalesce concurrent SQS batch calls: sends to the request queue, deletes of replies.

A hundred users uploading at once would cost a hundred SendMessage calls; gathered for a
few milliseconds they cost ten. Each item is paired with a future, flushed when ten are
waiting, when nothing else is on its way, or `wait_s` after the first, and every future
of a failed call gets the error (the batcher of Ray Serve, applied to SQS). It knows
nothing of what it sends: `call` is a batch call (`MessageQueue.send_batch` on one queue,
say) that returns the indexes of the items it could not handle.

Waiting only pays when company is coming, so `companions()` says how many items are on
their way (uploads still being stored): with none, a lone request goes out at once and
pays no latency for a batch that would stay a batch of one. Items added with
`add(..., wait=False)` nobody awaits (reply deletes): their failures are only logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from iras.aws.queues import SQS_BATCH_LIMIT

log = logging.getLogger(__name__)

#: What is batched: a message body, a receipt handle, a message with attributes.
T = TypeVar("T")

#: One SQS batch call on a fixed queue: items in, indexes of the failed items out.
BatchCall = Callable[[list[T]], Awaitable[list[int]]]


class SendFailed(RuntimeError):
    """SQS did not accept a message."""


@dataclass(slots=True)
class _Pending(Generic[T]):
    item: T
    done: asyncio.Future[None] | None  # None: nobody waits for this one


class BatchingSender(Generic[T]):
    """Hand items to `call` ten at a time, waiting at most `wait_s` to fill a batch."""

    def __init__(
        self,
        call: BatchCall[T],
        wait_s: float,
        companions: Callable[[], int] = lambda: 1,
        what: str = "sending to the request queue",
    ) -> None:
        self._call = call
        self._wait_s = wait_s
        self._companions = companions
        self._what = what
        self._pending: list[_Pending[T]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self.calls = 0

    async def send(self, items: Sequence[T]) -> None:
        """Hand over `items`; return once all were accepted, or raise `SendFailed`.

        A caller that gives up (cancelled, or one of its items failed) withdraws those of
        its items not yet handed to `call`; items in a call already on its way may still
        be delivered.
        """
        futures = self.add(items)
        try:
            await asyncio.gather(*futures)
        except BaseException:
            for future in futures:
                future.cancel()  # withdrawn: `_flush_now` drops them
            raise

    def add(self, items: Sequence[T], *, wait: bool = True) -> list[asyncio.Future[None]]:
        """Queue `items` for the next batches; the futures (none if `wait=False`) resolve
        once each item is accepted."""
        loop = asyncio.get_running_loop()
        entries = [_Pending(item, loop.create_future() if wait else None) for item in items]
        self._pending.extend(entries)
        while len(self._pending) >= SQS_BATCH_LIMIT:
            self._flush_now()
        if self._pending:
            if self._wait_s <= 0 or self._companions() <= 0:
                self._flush_now()
            elif self._timer is None:
                self._timer = loop.call_later(self._wait_s, self._flush_now)
        return [entry.done for entry in entries if entry.done is not None]

    def nudge(self) -> None:
        """Send what is pending now if no more company is coming (called when an upload
        that was on its way will not come: it failed, or it was refused)."""
        if self._pending and self._companions() <= 0:
            self._flush_now()

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
        self._pending = [p for p in self._pending if p.done is None or not p.done.cancelled()]
        chunk, self._pending = self._pending[:SQS_BATCH_LIMIT], self._pending[SQS_BATCH_LIMIT:]
        if not chunk:
            return
        task = asyncio.get_running_loop().create_task(self._send_chunk(chunk))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)
        if self._pending and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._wait_s, self._flush_now)

    async def _send_chunk(self, chunk: list[_Pending[T]]) -> None:
        self.calls += 1
        try:
            failed = set(await self._call([entry.item for entry in chunk]))
        except Exception as error:  # every waiter learns of the failure
            self._fail(chunk, SendFailed(f"{self._what} failed: {error}"))
            return
        for index, entry in enumerate(chunk):
            if index in failed:
                self._fail([entry], SendFailed(f"{self._what}: SQS refused an entry"))
            elif entry.done is not None and not entry.done.done():
                entry.done.set_result(None)

    def _fail(self, entries: list[_Pending[T]], error: SendFailed) -> None:
        unwatched = 0
        for entry in entries:
            if entry.done is None:
                unwatched += 1
            else:
                with contextlib.suppress(asyncio.InvalidStateError):
                    entry.done.set_exception(error)
        if unwatched:
            log.warning("%s (%d entries nobody waits for)", error, unwatched)
