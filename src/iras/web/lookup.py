"""Find results and jobs: in the gateway's memory first, then in the output bucket.

The bucket is what makes a result outlive the gateway that asked for it: after a restart
(or for a job the book has forgotten) the manifest and the per-request results are read
back from S3.

Reading back costs S3 calls on a caller's behalf, up to one per request of a job, so it
is bounded on every side. The gateway's lookups run on `Lookups`:

- an S3 client of their own (`AwsClients.objects_apart`), whose pool of
  `lookup_connections` connections is apart from the one uploads and SQS share: a flood
  of lookups queues behind itself and never holds a connection an upload needs. (A
  semaphore on the shared pool would still let lookups hold that many of its
  connections, and uploads would queue behind them; measured before this, twenty clients
  polling a forgotten 500-image job made uploads miss IRAS_AWS_DEADLINE_S.)
- at most `lookup_connections` GETs in flight gateway-wide, and `FAN_OUT_PER_LOOKUP` for
  one lookup, so a 500-image job makes 16 tasks, not 500;
- a cache of rebuilt jobs (`iras.web.stored_jobs`): polling a job costs S3 at most once a
  second, and nothing once it is complete;
- a `Meter` per lookup, which the route charges to its client's rate
  (`iras.web.caller_lookups`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from iras.aws import AwsClients
from iras.aws.errors import fail_fast_when_unreachable
from iras.config import Settings
from iras.messages import job_key, result_key
from iras.web.jobs import Job, JobBook, RequestRef
from iras.web.stored_jobs import StoredJobs

ResultJson = dict[str, Any]

_MISSING = {"NoSuchKey", "404", "NotFound"}

#: GETs one lookup makes at once: a 500-image job's results come 16 at a time, not 500
#: at once (tasks, memory and the semaphore's queue stay small).
FAN_OUT_PER_LOOKUP = 16


@dataclass(slots=True)
class Meter:
    """The S3 calls made for one caller: what its rate limit is charged."""

    calls: int = 0


class Lookups:
    """What the gateway's lookups in the output bucket run on: their own pool (`aws` with
    `objects` on it), a bound on their GETs in flight, and the cache of rebuilt jobs (see
    the module's docstring)."""

    def __init__(self, settings: Settings, aws: AwsClients, stored: StoredJobs | None = None):
        self.settings = settings
        self.aws = aws
        self.stored = stored if stored is not None else StoredJobs()
        self.in_flight = asyncio.Semaphore(settings.lookup_connections)

    async def close(self) -> None:
        await self.stored.close()


@contextlib.asynccontextmanager
async def open_lookups(settings: Settings, aws: AwsClients) -> AsyncIterator[Lookups]:
    """The lookups for the block, on `aws.objects_apart` (open the clients with
    `objects_apart=settings.lookup_connections`; without it they share `aws.objects`).
    They fail at once when S3 refuses connections: the route answers 503."""
    objects = aws.objects if aws.objects_apart is None else aws.objects_apart
    fail_fast_when_unreachable(objects)
    lookups = Lookups(settings, dataclasses.replace(aws, objects=objects))
    try:
        yield lookups
    finally:
        await lookups.close()


async def find_result(
    settings: Settings,
    aws: AwsClients,
    book: JobBook,
    request_id: str,
    *,
    lookups: Lookups | None = None,
    meter: Meter | None = None,
) -> ResultJson | None:
    """The result from memory, or from the output bucket (one GET, counted in `meter`);
    with `lookups`, read on their clients instead of `aws`."""
    known = book.result(request_id)
    if known is not None:
        return known
    return await _reads(settings, aws, lookups, meter).result(request_id)


async def stored_result(settings: Settings, aws: AwsClients, request_id: str) -> ResultJson | None:
    return await _Reads(settings, aws).result(request_id)


async def find_job(
    settings: Settings,
    aws: AwsClients,
    book: JobBook,
    job_id: str,
    *,
    lookups: Lookups | None = None,
    meter: Meter | None = None,
    with_results: bool = True,
) -> Job | None:
    """The job from memory, or rebuilt from its manifest and stored results.

    With `lookups`, through their clients, bounds and cache (`settings` and `aws` are then
    theirs): a job kept there is complete or refreshed at most once a second, so asking
    again costs nothing. `meter` counts the S3 calls made. `with_results=False` is for
    who owns the job: a job rebuilt for it may come with no results yet.
    """
    job = book.job(job_id)
    if job is not None:
        return job
    reads = _reads(settings, aws, lookups, meter)
    if lookups is not None:
        return await lookups.stored.job(
            job_id, lambda: reads.manifest(job_id), reads.fill, with_results=with_results
        )
    job = await reads.manifest(job_id)
    if job is not None and with_results:
        await reads.fill(job)
    return job


async def refresh_from_storage(
    settings: Settings,
    aws: AwsClients,
    job: Job,
    *,
    lookups: Lookups | None = None,
    meter: Meter | None = None,
) -> None:
    """Add to `job` the results that have reached the output bucket since last looked
    (one GET per missing result, `FAN_OUT_PER_LOOKUP` at once). To follow a job, ask
    `find_job` with `lookups` again instead: it refreshes a job at most once a second
    however many ask."""
    await _reads(settings, aws, lookups, meter).fill(job)


def job_json(job: Job, *, with_results: bool = True) -> dict[str, Any]:
    """The contract's job shape: id, requests (each with its result when there is one), counts."""
    requests = []
    for ref in job.requests:
        entry: dict[str, Any] = {"request_id": ref.request_id, "name": ref.name}
        result = job.results.get(ref.request_id)
        if with_results and result is not None:
            entry["result"] = result
        requests.append(entry)
    return {
        "job_id": job.job_id,
        "status": "done" if job.done else "pending",
        "total": len(job.requests),
        "done": len(job.results),
        "requests": requests,
        "links": {"self": f"/v1/jobs/{job.job_id}", "ws": f"/v1/jobs/{job.job_id}/ws"},
    }


def _reads(
    settings: Settings, aws: AwsClients, lookups: Lookups | None, meter: Meter | None
) -> _Reads:
    if lookups is None:
        return _Reads(settings, aws, meter)
    return _Reads(lookups.settings, lookups.aws, meter, lookups.in_flight)


@dataclass(frozen=True, slots=True)
class _Reads:
    """Reads from the output bucket on `aws`, counted in `meter`, at most as many at once
    as `in_flight` lets through."""

    settings: Settings
    aws: AwsClients
    meter: Meter | None = None
    in_flight: asyncio.Semaphore | None = None

    async def result(self, request_id: str) -> ResultJson | None:
        return await self._json(result_key(self.settings, request_id))

    async def manifest(self, job_id: str) -> Job | None:
        """The job as its manifest describes it: its owner and requests, no results yet."""
        manifest = await self._json(job_key(job_id))
        if manifest is None:
            return None
        refs = [RequestRef(r["request_id"], r["name"]) for r in manifest.get("requests", [])]
        return Job(job_id, refs, created_at=0.0, owner=manifest.get("owner"))

    async def fill(self, job: Job) -> None:
        """Add the job's results that are in the bucket and not in `job` yet."""
        missing = [ref.request_id for ref in job.requests if ref.request_id not in job.results]
        next_ids = iter(missing)  # shared by the fetchers: each id is fetched once

        async def fetch_in_turn() -> None:
            for request_id in next_ids:
                result = await self.result(request_id)
                if result is not None:
                    job.results[request_id] = result

        fetchers = [
            asyncio.ensure_future(fetch_in_turn())
            for _ in range(min(FAN_OUT_PER_LOOKUP, len(missing)))
        ]
        try:
            await asyncio.gather(*fetchers)
        except BaseException:  # one failed (or the lookup was cancelled): stop the others
            for fetcher in fetchers:
                fetcher.cancel()
            await asyncio.gather(*fetchers, return_exceptions=True)
            raise

    async def _json(self, key: str) -> ResultJson | None:
        if self.meter is not None:
            self.meter.calls += 1
        async with self.in_flight if self.in_flight is not None else contextlib.nullcontext():
            return await _read_json(self.aws, self.settings.records_bucket, key)


async def _read_json(aws: AwsClients, bucket: str, key: str) -> ResultJson | None:
    try:
        data = json.loads(await aws.objects.get(bucket, key))
    except ClientError as error:
        if error.response["Error"]["Code"] in _MISSING:
            return None
        raise
    return data if isinstance(data, dict) else None
