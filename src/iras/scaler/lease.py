"""The scaler's lease: of several gateways, exactly one sizes the fleet at a time.

The lease is one S3 object in the output bucket (`IRAS_LEADER_LEASE_KEY`), written only
with conditional requests, so it needs no server beyond the AWS services IRAS already
uses. The holder rewrites it every third of its time to live (`IRAS_LEADER_LEASE_S`);
every other gateway reads it as often, and takes it over once it has not changed for a
whole time to live.

Why this is safe:
- **One writer wins.** A free lease is taken with `PutObject If-None-Match: *`, which S3
  refuses (412) when the object exists; a lease is renewed or taken over with
  `PutObject If-Match: <ETag read>`, which S3 refuses when the object changed since.
  S3 decides conditional writes atomically (supported on general purpose buckets since
  August and November 2024): of two concurrent writes to one key, one succeeds and the
  other gets 412 PreconditionFailed or 409 ConditionalRequestConflict. moto 5.2 checks
  both headers too; the embedded AWS serialises conditional writes
  (`iras.local_aws.conditional`), since moto's own check-then-write is not atomic.
  Every write changes the body (a renewal counter), so every write changes the ETag.
- **No clocks are compared across machines.** The holder counts its lease valid until
  the moment it *sent* its last successful write plus the time to live, on its own
  monotonic clock, and acts only while at least half of that is left. A challenger
  takes over only once it has seen the same ETag for a whole time to live on *its*
  monotonic clock, counted from when it *received* that version, which is after the
  holder sent it. The holder's validity therefore ends before any takeover can begin,
  as long as the two clocks run at the same rate to within the margin (they do to a
  few parts per million). A holder cut off from S3 simply stops acting when its time
  runs out.
- **A gateway restarted with the same id** (`IRAS_GATEWAY_ID`) finds its own name on
  the lease and renews it at once (If-Match the ETag it read): each gateway needs an id
  of its own, which the README's deploy section says.

A gateway that stops cleanly writes the lease free (holder null), so another takes it
at its next read instead of a time to live later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from iras.aws import BotocoreClient
from iras.aws.errors import AWS_ERRORS

log = logging.getLogger(__name__)

#: Answers to a conditional write that another writer got in first.
LOST_RACE_CODES = frozenset(
    {"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409"}
)
#: How many times per time to live the holder renews, and a follower reads.
ROUNDS_PER_TTL = 3
#: The holder acts only while this share of its time to live is left.
ACT_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Seen:
    """One version of the lease object as this gateway read it."""

    etag: str
    holder: str | None
    term: int
    renewal: int
    ttl_s: float
    #: When this gateway first read this version (monotonic).
    since_s: float


def lapsed(seen: Seen, now_s: float, ttl_s: float) -> bool:
    """Whether a gateway that read `seen` may take the lease over at `now_s`."""
    return seen.holder is None or now_s - seen.since_s >= max(ttl_s, seen.ttl_s)


def lease_body(holder: str | None, term: int, renewal: int, ttl_s: float) -> bytes:
    """The object's content. `written_at` is for people reading it; no gateway uses it."""
    return json.dumps(
        {
            "holder": holder,
            "term": term,
            "renewal": renewal,
            "ttl_s": ttl_s,
            "written_at": round(time.time(), 3),
        }
    ).encode()


def parse_lease(body: bytes, etag: str, since_s: float) -> Seen:
    """A read lease; a body that is not one counts as free (and is overwritten)."""
    try:
        data: Any = json.loads(body)
        holder = data.get("holder")
        return Seen(
            etag,
            holder if isinstance(holder, str) and holder else None,
            int(data.get("term", 0)),
            int(data.get("renewal", 0)),
            float(data.get("ttl_s", 0.0)),
            since_s,
        )
    except (ValueError, TypeError, AttributeError):
        return Seen(etag, None, 0, 0, 0.0, since_s)


class Lease:
    """This gateway's view of the lease, and its attempts to hold it."""

    def __init__(
        self,
        s3: BotocoreClient,
        bucket: str,
        key: str,
        me: str,
        ttl_s: float,
        *,
        on_change: Callable[[bool], None] = lambda leading: None,
        clock: Callable[[], float] = time.monotonic,
        name: str = "scaler lease",
    ) -> None:
        """`on_change(leading)` hears when this gateway starts or stops leading; `name`
        is what the logs call it (the same machinery holds other claims, such as a
        reply queue's, `iras.web.reply_claim`)."""
        self.name = name
        self._s3 = s3
        self._bucket = bucket
        self._key = key
        self.me = me
        self.ttl_s = ttl_s
        self._on_change = on_change
        self._clock = clock
        self._seen: Seen | None = None
        self._valid_until_s = 0.0
        self._leading = False

    @property
    def leader_id(self) -> str | None:
        """The holder as last read or written (None: free or not read yet)."""
        return self._seen.holder if self._seen is not None else None

    @property
    def term(self) -> int:
        """Counts the lease's changes of hands; launch tokens carry it."""
        return self._seen.term if self._seen is not None else 0

    def held_for_s(self) -> float:
        """Seconds this gateway's lease is still valid (0: it does not hold it)."""
        if self._seen is None or self._seen.holder != self.me:
            return 0.0
        return max(0.0, self._valid_until_s - self._clock())

    def may_act(self) -> bool:
        """Whether this gateway may change the fleet now: it holds the lease with at least
        `ACT_SHARE` of its time to live left, so what it begins ends before a takeover."""
        return self.held_for_s() >= ACT_SHARE * self.ttl_s

    def next_round_in_s(self) -> float:
        """When to renew or read again: a third of the time to live, or the moment a
        follower may take a silent lease over, whichever comes first."""
        period_s = self.ttl_s / ROUNDS_PER_TTL
        seen = self._seen
        if seen is None or seen.holder == self.me or seen.holder is None:
            return period_s
        due_s = seen.since_s + max(self.ttl_s, seen.ttl_s) - self._clock()
        return max(0.05, min(period_s, due_s))

    async def round(self) -> None:
        """One round: renew a lease held, else read it and take it if free or lapsed."""
        if self.held_for_s() > 0:
            assert self._seen is not None
            await self._write(self._seen.term, self._seen.renewal + 1, if_match=self._seen.etag)
        else:
            seen = await self._read()
            if seen is None:
                await self._write(1, 0, if_match=None)
            elif seen.holder == self.me or lapsed(seen, self._clock(), self.ttl_s):
                term = seen.term if seen.holder == self.me else seen.term + 1
                await self._write(term, seen.renewal + 1, if_match=seen.etag)
        self._tell()

    async def keep(self) -> None:
        """Hold or watch the lease until cancelled; AWS errors are retried next round."""
        while True:
            try:
                await self.round()
            except Exception as error:  # the lease must outlive any outage, and any bug
                log.warning(
                    "%s: %s (tried again next round)",
                    self.name,
                    error,
                    exc_info=not isinstance(error, AWS_ERRORS),
                )
                self._tell()
            await asyncio.sleep(self.next_round_in_s())

    async def release(self) -> None:
        """Write the lease free if held, so another gateway leads at its next read.

        The version last written may not be the one stored: a renewal cancelled in flight
        (as the gateway stops) can have reached S3. So a refused release reads the lease
        again and, if it is still this gateway's, frees that version."""
        if self.held_for_s() <= 0 or self._seen is None:
            return
        self._valid_until_s = 0.0
        try:
            for _ in range(2):
                seen = self._seen
                try:
                    await self._put(
                        lease_body(None, seen.term, seen.renewal + 1, self.ttl_s), seen.etag
                    )
                    log.info("%s released", self.name)
                    break
                except ClientError as error:
                    if error.response["Error"]["Code"] not in LOST_RACE_CODES:
                        raise
                    again = await self._read()
                    if again is None or again.holder != self.me:
                        break  # someone else's already
        except AWS_ERRORS as error:  # it lapses by itself
            log.warning("could not release the %s: %s", self.name, error)
        self._seen = None
        self._tell()

    async def _read(self) -> Seen | None:
        try:
            response = await self._s3.get_object(Bucket=self._bucket, Key=self._key)
            body = await response["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in {"NoSuchKey", "404"}:
                self._seen = None
                return None
            raise
        etag = str(response["ETag"])
        previous = self._seen
        since_s = previous.since_s if previous and previous.etag == etag else self._clock()
        self._seen = parse_lease(body, etag, since_s)
        return self._seen

    async def _write(self, term: int, renewal: int, *, if_match: str | None) -> None:
        """Write the lease as this gateway's; a lost race leaves it to the next read."""
        sent_s = self._clock()
        try:
            etag = await self._put(lease_body(self.me, term, renewal, self.ttl_s), if_match)
        except ClientError as error:
            if error.response["Error"]["Code"] not in LOST_RACE_CODES:
                raise
            self._seen, self._valid_until_s = None, 0.0  # someone else wrote: read next round
            return
        self._seen = Seen(etag, self.me, term, renewal, self.ttl_s, self._clock())
        self._valid_until_s = sent_s + self.ttl_s

    async def _put(self, body: bytes, if_match: str | None) -> str:
        condition = {"IfMatch": if_match} if if_match is not None else {"IfNoneMatch": "*"}
        response = await self._s3.put_object(
            Bucket=self._bucket,
            Key=self._key,
            Body=body,
            ContentType="application/json",
            **condition,
        )
        return str(response["ETag"])

    def _tell(self) -> None:
        leading = self.held_for_s() > 0
        if leading != self._leading:
            self._leading = leading
            log.info(
                "%s: %s (term %d)",
                self.name,
                "this gateway holds it" if leading else f"holder is {self.leader_id or 'none'}",
                self.term,
            )
            self._on_change(leading)
