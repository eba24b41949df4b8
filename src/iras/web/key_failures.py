"""Wrong API keys, counted per address: a guesser gets a few tries a minute, not thousands.

Without a limit, keys can be guessed at the request rate (100/s per key or address). Each
address may present `per_min` wrong keys a minute (a token bucket: bursts of `per_min`,
refilled evenly over the minute). Past that the address is locked: every call from it
that presents a key is refused with 429 and Retry-After until a try has refilled, and
the key is not even checked, the right one included. That is the point: were the right
key still let in, the limit would only slow the wrong answers down, and a guesser would
go on at full speed, recognising success by its 200.

Only wrong keys count. A call with no key is not a guess (the page asks for a key only
after its first 401, and its background polls carry none until then), so it is never
counted and never locked out. The cost of locking by address is that a person sharing an
address with a guesser is refused too; behind a load balancer the address is the real
client's only with `IRAS_FORWARDED_ALLOW_IPS` set. Decisions are pure, given the time.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

#: Addresses remembered at once, least recently failed forgotten first (a forgotten
#: address starts again with a full allowance: that errs towards letting a person in).
MAX_ADDRESSES = 10_000
_MINUTE_S = 60.0


@dataclass(slots=True)
class _Allowance:
    tries: float
    updated_s: float


class KeyFailures:
    """At most `per_min` wrong keys a minute per address (0: no limit)."""

    def __init__(self, per_min: int) -> None:
        self.per_min = per_min
        self._addresses: OrderedDict[str, _Allowance] = OrderedDict()

    def locked_for_s(self, address: str, now_s: float) -> int | None:
        """Seconds until `address` may present a key again (the Retry-After), or None
        when it may now."""
        allowance = self._refilled(address, now_s)
        if allowance is None or allowance.tries >= 1:
            return None
        return max(1, math.ceil((1 - allowance.tries) * _MINUTE_S / self.per_min))

    def failed(self, address: str, now_s: float) -> None:
        """`address` presented a wrong key."""
        if not self.per_min:
            return
        allowance = self._refilled(address, now_s)
        if allowance is None:
            allowance = self._addresses[address] = _Allowance(self.per_min, now_s)
            while len(self._addresses) > MAX_ADDRESSES:
                self._addresses.popitem(last=False)
        self._addresses.move_to_end(address)
        allowance.tries = max(allowance.tries - 1, 0.0)

    def _refilled(self, address: str, now_s: float) -> _Allowance | None:
        allowance = self._addresses.get(address)
        if allowance is None or not self.per_min:
            return None
        refill = (now_s - allowance.updated_s) * self.per_min / _MINUTE_S
        allowance.tries = min(float(self.per_min), allowance.tries + max(refill, 0.0))
        allowance.updated_s = now_s
        return allowance
