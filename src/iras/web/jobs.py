"""The gateway's memory of recent jobs: who asked for what, what has come back, who listens.

Results arrive on the reply queue in any order and possibly twice (SQS delivers at least
once); the book keeps the first, wakes whoever waits for that request, and pushes it to
every WebSocket subscribed to its job. A subscriber first gets the results that arrived
before it connected, so a page that reconnects misses nothing. Memory is bounded by a
job count and an age; what the book forgot is still in the output bucket.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ResultJson = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RequestRef:
    request_id: str
    name: str


@dataclass(slots=True)
class Job:
    job_id: str
    requests: list[RequestRef]
    created_at: float
    owner: str | None = None
    results: dict[str, ResultJson] = field(default_factory=dict)
    subscribers: set[asyncio.Queue[ResultJson]] = field(default_factory=set)

    @property
    def done(self) -> bool:
        return len(self.results) >= len(self.requests)


class JobBook:
    """Jobs by id, results by request id, waiters and subscribers; bounded."""

    def __init__(
        self, max_jobs: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_jobs = max_jobs
        self._ttl_s = ttl_s
        self._clock = clock
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._job_of_request: dict[str, str] = {}
        self._waiters: dict[str, list[asyncio.Future[ResultJson]]] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def add_job(self, job_id: str, requests: list[RequestRef], owner: str | None = None) -> Job:
        self._evict()
        job = Job(job_id, list(requests), self._clock(), owner)
        self._jobs[job_id] = job
        for ref in requests:
            self._job_of_request[ref.request_id] = job_id
        return job

    def discard(self, job_id: str) -> None:
        """Forget a job nobody can ask about: one never accepted (its requests could not
        be queued), or an answered course upload (its client never learned its ids)."""
        job = self._jobs.pop(job_id, None)
        for ref in job.requests if job else []:
            self._job_of_request.pop(ref.request_id, None)

    def age_s(self, job: Job) -> float:
        """Seconds since `job` was added."""
        return self._clock() - job.created_at

    def job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def result(self, request_id: str) -> ResultJson | None:
        job = self._jobs.get(self._job_of_request.get(request_id, ""))
        return job.results.get(request_id) if job else None

    def deliver(self, result: ResultJson) -> Job | None:
        """Record a result from the reply queue; its job, or None for a duplicate or stranger."""
        request_id = str(result.get("request_id", ""))
        job = self._jobs.get(self._job_of_request.get(request_id, ""))
        if job is None or request_id in job.results:
            return None
        job.results[request_id] = result
        for waiter in self._waiters.pop(request_id, []):
            if not waiter.done():
                waiter.set_result(result)
        for queue in job.subscribers:
            queue.put_nowait(result)
        return job

    async def wait_for(self, request_id: str, timeout_s: float) -> ResultJson | None:
        """The result of `request_id` once it arrives, or None after `timeout_s`."""
        known = self.result(request_id)
        if known is not None:
            return known
        waiter: asyncio.Future[ResultJson] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(request_id, []).append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            return None
        finally:
            waiting = self._waiters.get(request_id)
            if waiting is not None and waiter in waiting:
                waiting.remove(waiter)
                if not waiting:
                    del self._waiters[request_id]

    def subscribe(self, job: Job) -> asyncio.Queue[ResultJson]:
        """A queue that receives the job's results: those already in, then each new one."""
        queue: asyncio.Queue[ResultJson] = asyncio.Queue()
        for result in job.results.values():
            queue.put_nowait(result)
        job.subscribers.add(queue)
        return queue

    def unsubscribe(self, job: Job, queue: asyncio.Queue[ResultJson]) -> None:
        job.subscribers.discard(queue)

    def _evict(self) -> None:
        """Forget the oldest jobs beyond the count limit or the age limit."""
        oldest_kept = self._clock() - self._ttl_s
        while self._jobs:
            job_id, job = next(iter(self._jobs.items()))
            if len(self._jobs) < self._max_jobs and job.created_at >= oldest_kept:
                break
            del self._jobs[job_id]
            for ref in job.requests:
                self._job_of_request.pop(ref.request_id, None)
