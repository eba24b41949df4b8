"""Whether a gateway's autoscaler is alive to decide for an idle worker.

An idle worker used to end itself after `IRAS_IDLE_EXIT_S`: the only way a fleet whose
gateways all died stopped costing money. With a live scaler that is the wrong call: the
scaler keeps `min_workers`, a warm pool stops rather than terminates, and a latency
target scales in gradually, none of which a worker can know. So an idle worker leaves
its exit to the scaler while one leads: it reads the scaler's lease
(`iras.scaler.lease`) once per idle period and exits only when the lease is free,
missing, or has not changed for its whole time to live (the leader stopped renewing).
Like the gateways, it never compares its clock with another machine's: only whether the
object's content changed between two of its own reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from botocore.exceptions import ClientError

from iras.aws import ObjectStore
from iras.aws.errors import AWS_ERRORS
from iras.scaler.lease import parse_lease

log = logging.getLogger(__name__)


class LeaderProbe:
    """Reads the scaler's lease and says whether its holder is renewing it."""

    def __init__(
        self,
        objects: ObjectStore,
        bucket: str,
        key: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._objects = objects
        self._bucket = bucket
        self._key = key
        self._clock = clock
        self._body: bytes | None = None
        self._changed_s = 0.0

    async def alive(self) -> bool:
        """Whether a scaler holds the lease and renewed it within its time to live.

        The first read of a held lease says yes (nothing to compare yet), so a worker
        whose gateways died exits one idle period later than it used to. An unreadable
        lease says no: a worker must not outlive its fleet because S3 is away.
        """
        try:
            body = await self._objects.get(self._bucket, self._key)
        except ClientError as error:
            if error.response["Error"]["Code"] not in {"NoSuchKey", "404", "NoSuchBucket"}:
                log.warning("could not read the scaler's lease: %s", error)
            return False
        except AWS_ERRORS as error:
            log.warning("could not read the scaler's lease: %s", error)
            return False
        now_s = self._clock()
        lease = parse_lease(body, etag="", since_s=now_s)
        held = lease.holder is not None and lease.ttl_s > 0  # IRAS always writes a ttl
        if body != self._body:
            self._body, self._changed_s = body, now_s
            return held
        return held and now_s - self._changed_s < lease.ttl_s
