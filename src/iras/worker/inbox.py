"""The worker's buffer of received, not yet started requests, and how batches leave it.

Receivers reserve room before they call SQS, so the buffer never holds more than its
capacity: every message in it is hidden from other workers, and a worker that hoards
slows the fleet. The batcher takes a batch when it is full or when the first request in
it has waited `batch_wait_s`, whichever comes first: a lone request is not held back for
company that may never come, and a burst still fills one forward pass.

It knows nothing of SQS or images: items are opaque, which keeps it testable with plain
values.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """A bounded FIFO with room reservations and deadline-based batch taking.

    Only the waits are coroutines; adding, releasing and draining are plain calls, so a
    receiver being cancelled can still give its reservation back in a `finally`.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"inbox capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._reserved = 0
        self._waiters: list[asyncio.Future[None]] = []

    def __len__(self) -> int:
        return len(self._items)

    @property
    def reserved(self) -> int:
        return self._reserved

    async def reserve(self, most: int) -> int:
        """Wait for free room, reserve up to `most` places, and return how many."""
        while self._free_room() <= 0:
            await self._changed()
        granted = min(most, self._free_room())
        self._reserved += granted
        return granted

    def put(self, items: Sequence[T], reserved: int) -> None:
        """Add `items`, received against a reservation of `reserved` places."""
        if len(items) > reserved or reserved > self._reserved:
            raise ValueError(
                f"{len(items)} items arrived against a reservation of {reserved} "
                f"({self._reserved} reserved in all)"
            )
        self._reserved -= reserved
        self._items.extend(items)
        self._wake()

    def release(self, reserved: int) -> None:
        """Give back a reservation that brought nothing (a failed or cancelled receive)."""
        self.put((), reserved)

    async def take_batch(
        self, size: int, wait_s: float, *, worth_waiting: Callable[[], bool] = lambda: True
    ) -> list[T]:
        """Wait for a first item, then up to `wait_s` more for the batch to fill to `size`
        if `worth_waiting()` says so once the first item is in."""
        while not self._items:
            await self._changed()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (wait_s if worth_waiting() else 0.0)
        while len(self._items) < size and (remaining := deadline - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed(), remaining)
        batch = [self._items.popleft() for _ in range(min(size, len(self._items)))]
        self._wake()
        return batch

    def drain(self) -> list[T]:
        """Remove and return everything buffered (for handing back at shutdown)."""
        items = list(self._items)
        self._items.clear()
        self._wake()
        return items

    def _free_room(self) -> int:
        return self.capacity - len(self._items) - self._reserved

    def _changed(self) -> asyncio.Future[None]:
        """A future that completes at the next change of contents or reservations."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
