"""One gateway at a time on a reply queue named outright (`IRAS_REPLY_QUEUE`).

A reply queue named `<prefix>-<gateway id>` is this gateway's by construction. One named
outright (the course's `<id>-resp-queue`) is not: two gateways given the same name would
each take the other's replies, and each leave the other's uploads waiting until their
timeout. So the gateway claims the name before it uses the queue, with the scaler's own
lease machinery (`iras.scaler.lease`: conditional writes to one S3 object, renewed every
third of `IRAS_LEADER_LEASE_S`), on an object of its own in the state bucket
(`claims/reply-queues/<name>`). A second gateway finds the claim held and does not get
ready: `/readyz` says which gateway holds the queue, and it tries again, so it takes the
queue over once the holder stops (at once after a clean stop, which frees the claim; a
time to live after a crash). A gateway restarted with the same `IRAS_GATEWAY_ID` finds
its own name on the claim and goes on at once.
"""

from __future__ import annotations

from iras.aws import BotocoreClient
from iras.config import Settings
from iras.messages import CLAIMS_PREFIX
from iras.scaler.lease import Lease

#: Where the claims on reply queues live in the state bucket (settings keep results and
#: the lease out of `CLAIMS_PREFIX`).
REPLY_QUEUE_CLAIMS = f"{CLAIMS_PREFIX}reply-queues/"


class ReplyQueueTaken(LookupError):
    """Another gateway holds the reply queue's name."""


def claim_key(queue_name: str) -> str:
    return f"{REPLY_QUEUE_CLAIMS}{queue_name}"


class ReplyQueueClaim:
    """This gateway's claim on the reply queue `queue_name`."""

    def __init__(self, s3: BotocoreClient, settings: Settings, queue_name: str, me: str) -> None:
        self.queue_name = queue_name
        self.lease = Lease(
            s3,
            settings.records_bucket,
            claim_key(queue_name),
            me,
            settings.leader_lease_s,
            name=f"claim on reply queue {queue_name}",
        )

    async def take(self) -> None:
        """Hold the claim, or raise `ReplyQueueTaken` naming who does. Called again after
        a refusal, it takes a claim whose holder has stopped renewing it for a whole time
        to live (this object remembers since when)."""
        await self.lease.round()
        if self.lease.held_for_s() > 0:
            return
        holder = self.lease.leader_id or "another gateway"
        raise ReplyQueueTaken(
            f"reply queue {self.queue_name!r} (IRAS_REPLY_QUEUE) is held by gateway "
            f"{holder!r}: two gateways on one reply queue would take each other's replies. "
            "Give each gateway its own IRAS_REPLY_QUEUE (or none), or stop the other; this "
            "one takes the queue over once the other has stopped"
        )

    async def keep(self) -> None:
        """Renew the claim until cancelled (`Lease.keep`)."""
        await self.lease.keep()

    async def release(self) -> None:
        await self.lease.release()
