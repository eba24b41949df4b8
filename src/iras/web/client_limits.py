"""Per-client limits: a request rate (token bucket) and a cap on uploads in progress.

One client must not starve the others: without limits a single script can fill the
request queue or hold every connection. A client is its API key's digest when keys are
on, else its address. Decisions are pure, given the time, so they are tested with a fake
clock; the middleware that applies them answers 429 with `Retry-After`.

A request costs one token; work a request makes the gateway do on its client's behalf
costs more (`charge`: one per S3 call of a lookup of a job the gateway has forgotten, up
to 501 for a job of 500 images). Such work is known only once done, so the charge may
take the bucket below zero: the client's next requests are refused until the rate has
paid the debt back, with a `Retry-After` that says when. A debt is capped at
`MAX_DEBT_S` seconds of the rate, so that no single burst locks a client out for long.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

#: Clients remembered at once; the least recently seen are forgotten first (a forgotten
#: client starts again with a full bucket, which only errs towards letting it in).
MAX_CLIENTS = 10_000
#: The deepest a charge takes a bucket: this many seconds of the rate.
MAX_DEBT_S = 60.0


@dataclass(slots=True)
class _Client:
    tokens: float
    updated_s: float
    uploading: int = 0


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused, and after how long to try again."""

    code: str
    detail: str
    retry_after_s: int


class ClientLimits:
    """`rate_per_s` requests per second with bursts of `burst` (0: no rate limit), and at
    most `max_uploads` uploads in progress per client (0: no cap)."""

    def __init__(self, rate_per_s: float, burst: int, max_uploads: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = max(burst, 1)
        self.max_uploads = max_uploads
        self._clients: OrderedDict[str, _Client] = OrderedDict()

    def admit(self, client: str, now_s: float, *, upload: bool) -> Refusal | None:
        """Count a request from `client`; None to let it in, else why not.

        An admitted upload must be followed by `finished(client)` when it ends.
        """
        state = self._state(client, now_s)
        if upload and self.max_uploads and state.uploading >= self.max_uploads:
            return Refusal(
                "too_many_uploads",
                f"this client already has {state.uploading} uploads in progress; the limit "
                f"is {self.max_uploads} (IRAS_MAX_UPLOADS_PER_CLIENT): wait for answers",
                1,
            )
        if self.rate_per_s > 0:
            self._refill(state, now_s)
            if state.tokens < 1:
                wait_s = math.ceil((1 - state.tokens) / self.rate_per_s)
                return Refusal(
                    "rate_limited",
                    f"more than {self.rate_per_s:g} requests per second from this client "
                    f"(IRAS_RATE_LIMIT_PER_S, bursts of {self.burst}; a lookup answered from "
                    "the output bucket counts one more per S3 call it made): slow down",
                    max(wait_s, 1),
                )
            state.tokens -= 1
        if upload:
            state.uploading += 1
        return None

    def charge(self, client: str, now_s: float, tokens: float) -> None:
        """Take `tokens` more from `client`'s bucket, for work done on its behalf after it
        was admitted (S3 calls); the bucket may go below zero, down to `MAX_DEBT_S` of the
        rate, and the client's next requests are refused until it is back above one."""
        if self.rate_per_s <= 0 or tokens <= 0:
            return
        state = self._state(client, now_s)
        self._refill(state, now_s)
        state.tokens = max(state.tokens - tokens, -MAX_DEBT_S * self.rate_per_s)

    def finished(self, client: str) -> None:
        """An admitted upload ended (answered, refused later on, or abandoned)."""
        state = self._clients.get(client)
        if state is not None and state.uploading > 0:
            state.uploading -= 1

    def _refill(self, state: _Client, now_s: float) -> None:
        state.tokens = min(self.burst, state.tokens + (now_s - state.updated_s) * self.rate_per_s)
        state.updated_s = now_s

    def _state(self, client: str, now_s: float) -> _Client:
        state = self._clients.get(client)
        if state is None:
            state = self._clients[client] = _Client(tokens=self.burst, updated_s=now_s)
            while len(self._clients) > MAX_CLIENTS:
                oldest, old = next(iter(self._clients.items()))
                if old.uploading:  # never forget a client mid-upload: its count matters
                    self._clients.move_to_end(oldest)
                    break
                del self._clients[oldest]
        else:
            self._clients.move_to_end(client)
        return state
