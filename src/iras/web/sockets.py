"""How many WebSockets the gateway holds open: a cap per client and one in all.

Each socket costs a task and a queue, and one that follows a job known only from the
output bucket an S3 poll per second; uncapped, one script could open thousands and pin as
many jobs in memory. A client is what `iras.web.access.client_of` says (its API key's
digest, or its address). Decisions are pure bookkeeping, tested without a network; the
route turns a refusal into a JSON message and a 44xx close, since a browser cannot read
the status of a refused handshake.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

#: Close codes of a refused socket (4000-4999 are the application's): the client holds
#: its share already (as HTTP 429), or the gateway holds all it will (as HTTP 503).
CLOSE_TOO_MANY_FOR_CLIENT = 4429
CLOSE_GATEWAY_FULL = 4503


@dataclass(frozen=True, slots=True)
class SocketRefusal:
    """Why a socket was refused: the message's code and detail, and the close code."""

    code: str
    detail: str
    close_code: int


class SocketSlots:
    """At most `max_total` sockets open, `max_per_client` of them per client (0: no cap)."""

    def __init__(self, max_total: int, max_per_client: int) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self._open: Counter[str] = Counter()
        self._total = 0

    def __len__(self) -> int:
        return self._total

    def open_for(self, client: str) -> int:
        return self._open[client]

    def take(self, client: str) -> SocketRefusal | None:
        """Count a socket of `client` as open; None to let it in, else why not.

        A socket let in must be given back (`give_back`) when it ends, however it ends.
        """
        if self.max_per_client and self._open[client] >= self.max_per_client:
            return SocketRefusal(
                "too_many_websockets",
                f"this client already has {self._open[client]} WebSockets open; the limit "
                f"is {self.max_per_client} (IRAS_MAX_WEBSOCKETS_PER_CLIENT): close one first",
                CLOSE_TOO_MANY_FOR_CLIENT,
            )
        if self.max_total and self._total >= self.max_total:
            return SocketRefusal(
                "gateway_busy",
                f"the gateway holds {self._total} WebSockets, its limit (IRAS_MAX_WEBSOCKETS): "
                "retry shortly, or follow the job with GET /v1/jobs/{job_id}",
                CLOSE_GATEWAY_FULL,
            )
        self._open[client] += 1
        self._total += 1
        return None

    def give_back(self, client: str) -> None:
        """A socket of `client` that `take` let in has ended."""
        if self._open[client] <= 0:
            return
        self._open[client] -= 1
        self._total -= 1
        if not self._open[client]:
            del self._open[client]
