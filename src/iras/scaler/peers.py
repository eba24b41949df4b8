"""The other gateways' uploads, as the leading gateway's policy needs them.

The policy reads "uploads since the last look" and "uploads being stored now": without
the other gateways' share, a leader that sees an empty queue twice between another
gateway's one-at-a-time uploads scales the fleet to zero under them. So every gateway
that does not lead reports its figures to the one that does (`PeerReporter`), on the
leader's own reply queue, which the leader long-polls anyway: at most one message per
look while it has uploads, none while idle, and one at once when an upload may need more
workers (the follower's nudge, which wakes the leader). The leader adds them up
(`PeerFigures`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from iras.aws import BotocoreClient, MessageQueue
from iras.infra.provision import find_queue_url
from iras.messages import GatewayReport, encode_gateway_report

log = logging.getLogger(__name__)

#: A peer's uploads in progress count for this many of its reporting periods at most.
ARRIVING_FRESH_PERIODS = 3


@dataclass(slots=True)
class _Arriving:
    count: int
    at_s: float


class PeerFigures:
    """The leader's side: the figures the other gateways reported."""

    def __init__(self, period_s: float) -> None:
        self._fresh_s = ARRIVING_FRESH_PERIODS * period_s
        self._arriving: dict[str, _Arriving] = {}
        self.reports = 0

    def add(self, report: GatewayReport, now_s: float) -> None:
        self._arriving[report.gateway] = _Arriving(report.arriving, now_s)
        self.reports += 1

    def arriving(self, now_s: float) -> int:
        """Uploads being stored at the other gateways, as they last reported (recently)."""
        return sum(a.count for a in self._arriving.values() if now_s - a.at_s <= self._fresh_s)

    def gateways(self, now_s: float) -> list[str]:
        """The gateways heard from recently."""
        return sorted(g for g, a in self._arriving.items() if now_s - a.at_s <= self._fresh_s)


class PeerReporter:
    """A follower's side: counts its uploads and results, and reports them to the leader."""

    def __init__(
        self, sqs: BotocoreClient, messages: MessageQueue, reply_queue_prefix: str, me: str
    ) -> None:
        self._sqs = sqs
        self._messages = messages
        self._prefix = reply_queue_prefix
        self.me = me
        self._uploads = 0
        self._answered = 0
        self._last_arriving = 0
        self._leader_url: tuple[str, str] | None = None  # (leader id, its reply queue URL)

    def uploaded(self, count: int = 1) -> None:
        self._uploads += count

    def answered(self, count: int = 1) -> None:
        self._answered += count

    async def report(self, leader_id: str | None, arriving: int, *, urgent: bool) -> bool:
        """Send what happened since the last report to `leader_id`; False when there was
        nothing to say, no other leader, or its reply queue is not there (yet)."""
        if leader_id is None or leader_id == self.me:
            self._uploads = self._answered = 0  # the leader counts its own
            return False
        quiet = not (self._uploads or self._answered or arriving or self._last_arriving)
        if quiet and not urgent:
            return False
        url = await self._reply_queue_of(leader_id)
        if url is None:
            return False
        report = GatewayReport(self.me, self._uploads, arriving, self._answered, urgent)
        failed = await self._messages.send_batch(url, [encode_gateway_report(report)])
        if not failed:
            self._uploads = self._answered = 0
            self._last_arriving = arriving
        return not failed

    async def _reply_queue_of(self, leader_id: str) -> str | None:
        if self._leader_url is not None and self._leader_url[0] == leader_id:
            return self._leader_url[1]
        url = await find_queue_url(self._sqs, f"{self._prefix}-{leader_id}")
        if url is not None:
            self._leader_url = (leader_id, url)
        return url
