"""The gateway-wide budget of upload bytes in flight: what bounds the memory uploads take.

Per-client limits bound what one client holds (IRAS_MAX_UPLOADS_PER_CLIENT uploads of at
most IRAS_MAX_REQUEST_BYTES each), not what all of them hold together, nor what one
address holds: 200 uploads of 200 MB was 40 GB. The budget counts the bodies the gateway
is reading, checking and storing (`IRAS_UPLOAD_BUDGET_BYTES`), charged from a request's
Content-Length before its body is read (or chunk by chunk, for a chunked body), and given
back once its images are stored and queued, or refused, or abandoned. An upload that
does not fit waits briefly for room, then is refused 503 with Retry-After: the client
retries later, rather than the gateway swapping or being killed for its memory.

`BudgetLedger` is the accounting alone, pure and synchronous: claims are granted first
come first served, so a big upload is not starved by a stream of small ones overtaking
it. A claim bigger than the whole budget (a budget set below the request limit) could
never fit: it is granted when nothing else is in flight, and meanwhile does not hold up
the queue behind it. `UploadBudget` adds the waiting, `UploadHold` is one request's share.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

#: How long an upload waits for room in the budget before it is refused (503): room
#: comes back as others' images are stored, which takes a few hundred milliseconds.
ADMISSION_WAIT_S = 1.5

#: The Retry-After of that 503, in seconds.
BUSY_RETRY_AFTER_S = 2


@dataclass(frozen=True, slots=True)
class _Claim:
    held: int  # bytes its request holds already (a chunked body, part read)
    more: int  # bytes it asks for


class BudgetLedger:
    """Bytes in flight against `capacity_bytes`, and the claims waiting for room, in order."""

    def __init__(self, capacity_bytes: int) -> None:
        if capacity_bytes < 1:
            raise ValueError(f"capacity_bytes must be at least 1, got {capacity_bytes}")
        self.capacity_bytes = capacity_bytes
        self.in_flight_bytes = 0
        self.high_water_bytes = 0  # the most ever in flight: what tests and metrics read
        self._waiting: dict[int, _Claim] = {}  # in arrival order

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def claim(self, ticket: int, more: int, held: int = 0) -> list[int]:
        """Ask, under `ticket`, for `more` bytes for a request holding `held`; the tickets
        this grants (charged), in order: `ticket` if there is room now, else it waits its
        turn until a `release` or `withdraw` grants it."""
        if more < 0 or held < 0:
            raise ValueError(f"byte counts cannot be negative (more={more}, held={held})")
        if ticket in self._waiting:
            raise ValueError(f"ticket {ticket} is already waiting")
        self._waiting[ticket] = _Claim(held, more)
        return self._grant_waiting()

    def release(self, count: int) -> list[int]:
        """Give back `count` bytes; the tickets this grants (charged), in order."""
        if not 0 <= count <= self.in_flight_bytes:
            raise ValueError(f"cannot release {count} of {self.in_flight_bytes} bytes in flight")
        self.in_flight_bytes -= count
        return self._grant_waiting()

    def withdraw(self, ticket: int) -> list[int]:
        """Forget a waiting claim (its request stopped waiting); the tickets this grants:
        a claim that was holding up the queue no longer does."""
        self._waiting.pop(ticket, None)
        return self._grant_waiting()

    def _fits(self, claim: _Claim) -> bool:
        # Room for it, or nobody else holds anything (alone, any claim is granted).
        return (
            self.in_flight_bytes + claim.more <= self.capacity_bytes
            or self.in_flight_bytes == claim.held
        )

    def _grant_waiting(self) -> list[int]:
        granted = []
        for ticket, claim in list(self._waiting.items()):
            if self._fits(claim):
                del self._waiting[ticket]
                self.in_flight_bytes += claim.more
                self.high_water_bytes = max(self.high_water_bytes, self.in_flight_bytes)
                granted.append(ticket)
            elif claim.held + claim.more <= self.capacity_bytes:
                break  # first come, first served among claims that can ever fit
        return granted


class UploadBudget:
    """The ledger with waiting: `take` waits up to `wait_s` for its claim to be granted."""

    def __init__(self, capacity_bytes: int, wait_s: float = ADMISSION_WAIT_S) -> None:
        self.ledger = BudgetLedger(capacity_bytes)
        self.wait_s = wait_s
        self._tickets = itertools.count()
        self._granted: dict[int, asyncio.Future[None]] = {}

    async def take(self, more: int, held: int = 0) -> bool:
        """Charge `more` bytes (its request holds `held`), waiting up to `wait_s` for room;
        False, with nothing charged, if there was none by then."""
        ticket = next(self._tickets)
        granted = asyncio.get_running_loop().create_future()
        self._granted[ticket] = granted
        try:
            self._wake(self.ledger.claim(ticket, more, held))
            if granted.done():
                return True
            async with asyncio.timeout(self.wait_s):
                await asyncio.shield(granted)
            return True
        except TimeoutError:
            if granted.done():  # granted as the time ran out: it counts
                return True
            self._wake(self.ledger.withdraw(ticket))
            return False
        except asyncio.CancelledError:
            if granted.done():  # charged, but its request is gone: give the bytes back
                self.release(more)
            else:
                self._wake(self.ledger.withdraw(ticket))
            raise
        finally:
            self._granted.pop(ticket, None)

    def release(self, count: int) -> None:
        self._wake(self.ledger.release(count))

    def _wake(self, tickets: list[int]) -> None:
        for ticket in tickets:
            self._granted[ticket].set_result(None)


class UploadHold:
    """One request's share of the budget: what it took, given back once, whatever happens."""

    def __init__(self, budget: UploadBudget) -> None:
        self.budget = budget
        self.held_bytes = 0
        self._released = False

    async def take(self, more: int) -> bool:
        """Add `more` bytes to this request's share; False if the budget had no room."""
        if self._released:
            raise RuntimeError("this upload's hold was released: it takes no more bytes")
        if more == 0:
            return True
        if not await self.budget.take(more, self.held_bytes):
            return False
        self.held_bytes += more
        return True

    def release(self) -> None:
        """Give back everything held (idempotent): the request's upload work has ended."""
        if not self._released:
            self._released = True
            held, self.held_bytes = self.held_bytes, 0
            if held:
                self.budget.release(held)

    def refusal_detail(self, more: int) -> str:
        """Why a request wanting `more` bytes was refused, and what to do."""
        ledger = self.budget.ledger
        wanted = self.held_bytes + more
        if wanted > ledger.capacity_bytes:
            return (
                f"this upload ({wanted:,} bytes) is larger than the gateway's budget for "
                f"uploads in flight ({ledger.capacity_bytes:,} bytes, IRAS_UPLOAD_BUDGET_BYTES) "
                "and is taken only when no other upload is in progress, which none was for "
                f"{self.budget.wait_s:g} s: send fewer or smaller images per request, or retry"
            )
        return (
            f"the gateway is busy: {ledger.in_flight_bytes:,} of its "
            f"{ledger.capacity_bytes:,} bytes for uploads in flight (IRAS_UPLOAD_BUDGET_BYTES) "
            f"are taken and this upload needs {wanted:,}; nothing was accepted: retry shortly "
            "(Retry-After), or send fewer images per request"
        )
