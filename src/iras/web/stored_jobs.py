"""Jobs rebuilt from the output bucket, kept so that polling one does not cost S3 each time.

A job the gateway's book has forgotten (or that another gateway ran) is rebuilt from its
manifest and one GET per request. Without a cache, a client polling its forgotten
500-image job makes 501 GETs per poll. Here:

- a complete job is never fetched again (results never change once written);
- a pending job is refreshed at most once per `refresh_s`, however often it is asked for;
- concurrent lookups of one job share one fetch (single flight): the first caller's fetch
  runs as a task of its own, which the others await, so a caller that gives up (its
  deadline, its client gone) cancels neither the fetch nor the others' wait;
- memory is bounded: at most `max_jobs` jobs and `max_requests` requests in all (a result
  is ~3 KB in memory: 256 full 500-image jobs would be ~400 MB), least recently used
  forgotten first. A forgotten job is only rebuilt again, at its next caller's expense.

A job is first built without results (its manifest: who owns it, its requests), enough
for checking who may see one of its results; its results are fetched when somebody asks
for the job itself. The fetches are given by the caller; this module only decides when
they run, given a clock, so it is tested with a fake one.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from iras.web.jobs import Job

#: Defaults: jobs kept, requests kept in all, and the least time between two refreshes of
#: one pending job (a poller sees new results within it).
MAX_STORED_JOBS = 256
MAX_STORED_REQUESTS = 10_000
REFRESH_S = 1.0

Build = Callable[[], Awaitable[Job | None]]
Refresh = Callable[[Job], Awaitable[None]]

_T = TypeVar("_T")


@dataclass(slots=True, eq=False)
class _Entry:
    job: Job
    #: When its results were last fetched (clock seconds); None: never, only its manifest.
    refreshed_s: float | None = None


class StoredJobs:
    """The cache of rebuilt jobs, bounded, with one fetch in flight per job at most."""

    def __init__(
        self,
        max_jobs: int = MAX_STORED_JOBS,
        max_requests: int = MAX_STORED_REQUESTS,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_jobs = max_jobs
        self.max_requests = max_requests
        self.refresh_s = refresh_s
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._requests = 0
        self._flights: dict[tuple[str, str], asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def requests(self) -> int:
        """The requests of the jobs kept: what bounds their memory."""
        return self._requests

    async def job(
        self, job_id: str, build: Build, refresh: Refresh, *, with_results: bool = True
    ) -> Job | None:
        """The job `job_id`: kept, or made by `build` (its manifest: None when there is
        none, which is not kept); with `with_results`, its results brought up to date by
        `refresh` unless it is complete or was refreshed within `refresh_s`."""
        entry = self._entries.get(job_id)
        if entry is None:
            entry = await self._once(("build", job_id), lambda: self._build(job_id, build))
            if entry is None:
                return None
        else:
            self._entries.move_to_end(job_id)
        if with_results and not self._fresh(entry):
            await self._once(("refresh", job_id), lambda: self._refresh(entry, refresh))
        return entry.job

    async def close(self) -> None:
        """Cancel the fetches in flight (their callers are gone, or going)."""
        flights = list(self._flights.values())
        for flight in flights:
            flight.cancel()
        await asyncio.gather(*flights, return_exceptions=True)

    def _fresh(self, entry: _Entry) -> bool:
        if entry.job.done:
            return True
        return entry.refreshed_s is not None and self._clock() - entry.refreshed_s < self.refresh_s

    async def _build(self, job_id: str, build: Build) -> _Entry | None:
        job = await build()
        if job is None:
            return None
        entry = self._entries.get(job_id)
        if entry is None:  # not kept meanwhile: keep it now
            entry = self._entries[job_id] = _Entry(job)
            self._requests += len(job.requests)
            self._forget_beyond_bounds()
        return entry

    async def _refresh(self, entry: _Entry, refresh: Refresh) -> None:
        await refresh(entry.job)
        entry.refreshed_s = self._clock()  # from its end: a slow refresh is not run back to back

    def _forget_beyond_bounds(self) -> None:
        while len(self._entries) > 1 and (
            len(self._entries) > self.max_jobs or self._requests > self.max_requests
        ):
            _, oldest = self._entries.popitem(last=False)
            self._requests -= len(oldest.job.requests)

    async def _once(self, key: tuple[str, str], make: Callable[[], Awaitable[_T]]) -> _T:
        """`make()`, run once however many callers ask for `key` while it runs."""
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(make())
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        return cast(_T, await asyncio.shield(flight))  # the flight of `key` is make()'s

    def _landed(self, key: tuple[str, str], flight: asyncio.Future[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved: a failure nobody awaited logs no warning
