"""The gateway's memory of recent jobs: who asked for what, what has come back, who listens.

Results arrive on the reply queue in any order and possibly twice (SQS delivers at least
once); the book keeps the first, wakes whoever waits for that request, and pushes it to
every WebSocket subscribed to its job. A subscriber first gets the results that arrived
before it connected, so a page that reconnects misses nothing.

Memory is bounded by a job count and an age, oldest forgotten first; what the book forgot
is still in the output bucket. But a job somebody is attached to is never forgotten: one
whose submission is still in progress, whose result an `/upload` or `?wait=true` caller
waits for, or which a WebSocket follows. Forgetting it would drop its replies as
strangers, and its waiter would get a 504 although the results came. When every old job
is pinned the book goes past its count (a soft limit) rather than refuse work: pins are
already bounded, by the per-client caps on uploads in progress and on sockets, and each
ends within `IRAS_WAIT_TIMEOUT_S` or `IRAS_WEBSOCKET_TIMEOUT_S`.

Each client (API key, or address) may hold at most `max_jobs_per_client` jobs, so that one
script cannot push everyone else's jobs out. At its limit the client's own oldest complete,
unpinned job makes room (its results are all in the output bucket); when it has none, a
new job is refused with `TooManyJobs` - before its images are stored, since the place is
reserved (`reserve`) before the submission starts.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ResultJson = dict[str, Any]

#: Seconds a client refused for too many jobs is told to wait: its jobs in progress
#: complete as the fleet works, and each complete one can make room.
JOBS_RETRY_AFTER_S = 5


@dataclass(frozen=True, slots=True)
class RequestRef:
    request_id: str
    name: str


@dataclass(slots=True, eq=False)
class Job:
    job_id: str
    requests: list[RequestRef]
    created_at: float
    owner: str | None = None
    #: The client whose share of the book it takes (None: nobody's, no cap).
    client: str | None = None
    results: dict[str, ResultJson] = field(default_factory=dict)
    subscribers: set[asyncio.Queue[ResultJson]] = field(default_factory=set)
    #: Its submission in progress, and each caller waiting for one of its results.
    holds: int = 0

    @property
    def done(self) -> bool:
        return len(self.results) >= len(self.requests)

    @property
    def pinned(self) -> bool:
        """Somebody is attached to it: the book must not forget it."""
        return self.holds > 0 or bool(self.subscribers)


@dataclass(slots=True, eq=False)
class JobSlot:
    """A client's place in the book for one job, taken before the upload is stored and
    given back (`JobBook.release`) when the submission ends; its job is pinned meanwhile."""

    client: str | None
    job: Job | None = None
    released: bool = False


class TooManyJobs(Exception):
    """The client's share of the book is full of jobs still in progress or attached to."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.detail, self.retry_after_s = detail, retry_after_s


class JobBook:
    """Jobs by id, results by request id, waiters and subscribers; bounded."""

    def __init__(
        self,
        max_jobs: int,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_jobs_per_client: int = 0,
    ) -> None:
        self._max_jobs = max_jobs
        self._ttl_s = ttl_s
        self._clock = clock
        self._max_jobs_per_client = max_jobs_per_client
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._job_of_request: dict[str, str] = {}
        self._waiters: dict[str, list[_Wait]] = {}
        #: Per client, its jobs in the book (oldest first) and its slots not yet used.
        self._jobs_of_client: dict[str, dict[str, Job]] = {}
        self._open_slots: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._jobs)

    def jobs_of(self, client: str) -> int:
        """The client's share in use: its jobs in the book and its submissions in progress."""
        return len(self._jobs_of_client.get(client, ())) + self._open_slots[client]

    def reserve(self, client: str | None) -> JobSlot:
        """A place for one job of `client`, or `TooManyJobs` when its share is full."""
        self._evict(room=0)  # expired jobs first: they free their clients' shares
        if client is not None:
            if self._max_jobs_per_client and self.jobs_of(client) >= self._max_jobs_per_client:
                self._make_room_for(client)
            self._open_slots[client] += 1
        return JobSlot(client)

    def add_job(
        self,
        job_id: str,
        requests: list[RequestRef],
        owner: str | None = None,
        slot: JobSlot | None = None,
    ) -> Job:
        """Add a job; with `slot` (from `reserve`) it is the slot's client's, and pinned
        until the slot is released."""
        self._evict(room=1)
        job = Job(job_id, list(requests), self._clock(), owner)
        self._jobs[job_id] = job
        for ref in requests:
            self._job_of_request[ref.request_id] = job_id
        if slot is not None and not slot.released and slot.job is None:
            slot.job, job.client = job, slot.client
            job.holds += 1
            if slot.client is not None:  # the slot's place becomes the job's
                self._take_open_slot(slot.client)
                self._jobs_of_client.setdefault(slot.client, {})[job_id] = job
        return job

    def release(self, slot: JobSlot) -> None:
        """The submission ended: an unused slot frees its place, a used one unpins its job
        (which keeps the place). Releasing twice does nothing."""
        if slot.released:
            return
        slot.released = True
        if slot.job is not None:
            slot.job.holds -= 1
        elif slot.client is not None:
            self._take_open_slot(slot.client)

    def discard(self, job_id: str) -> None:
        """Forget a job nobody can ask about: one never accepted (its requests could not
        be queued), or an answered course upload (its client never learned its ids)."""
        job = self._jobs.get(job_id)
        if job is not None:
            self._forget(job)

    def age_s(self, job: Job) -> float:
        """Seconds since `job` was added."""
        return self._clock() - job.created_at

    def job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def result(self, request_id: str) -> ResultJson | None:
        job = self._job_of(request_id)
        return job.results.get(request_id) if job else None

    def deliver(self, result: ResultJson) -> Job | None:
        """Record a result from the reply queue; its job, or None for a duplicate or stranger."""
        request_id = str(result.get("request_id", ""))
        job = self._job_of(request_id)
        if job is None or request_id in job.results:
            return None
        job.results[request_id] = result
        for wait in self._waiters.pop(request_id, []):
            self._end_wait(wait, result)
        for queue in job.subscribers:
            queue.put_nowait(result)
        return job

    def wait_for(self, request_id: str, timeout_s: float) -> asyncio.Future[ResultJson | None]:
        """Await it: the result of `request_id` once it arrives, or None after `timeout_s`.

        The wait starts at this call, not when the answer is first awaited, so its job is
        pinned from here on: a route that gathers many waits leaves no moment in which the
        job its submission just unpinned could be forgotten. An abandoned wait ends by
        itself after `timeout_s`; a cancelled one at once.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResultJson | None] = loop.create_future()
        known = self.result(request_id)
        if known is not None:
            future.set_result(known)
            return future
        wait = _Wait(request_id, future, self._job_of(request_id))
        self._waiters.setdefault(request_id, []).append(wait)
        if wait.job is not None:
            wait.job.holds += 1
        wait.timer = loop.call_later(timeout_s, self._end_wait, wait, None)
        future.add_done_callback(lambda _: self._end_wait(wait, None))  # cancelled
        return future

    def subscribe(self, job: Job) -> asyncio.Queue[ResultJson]:
        """A queue that receives the job's results: those already in, then each new one."""
        queue: asyncio.Queue[ResultJson] = asyncio.Queue()
        for result in job.results.values():
            queue.put_nowait(result)
        job.subscribers.add(queue)
        return queue

    def unsubscribe(self, job: Job, queue: asyncio.Queue[ResultJson]) -> None:
        job.subscribers.discard(queue)

    def _job_of(self, request_id: str) -> Job | None:
        return self._jobs.get(self._job_of_request.get(request_id, ""))

    def _evict(self, room: int) -> None:
        """Forget, oldest first, the jobs past the age limit, and enough more to leave
        `room` under the count limit; pinned jobs are passed over, whatever their age."""
        oldest_kept = self._clock() - self._ttl_s
        excess = len(self._jobs) + room - self._max_jobs
        doomed = []
        for job in self._jobs.values():  # oldest first: the order they were added in
            if excess <= 0 and job.created_at >= oldest_kept:
                break
            if not job.pinned:
                doomed.append(job)
                excess -= 1
        for job in doomed:
            self._forget(job)

    def _make_room_for(self, client: str) -> None:
        """Forget the client's oldest complete job nobody is attached to; `TooManyJobs`
        when it has none (all in progress or pinned)."""
        for job in self._jobs_of_client.get(client, {}).values():
            if job.done and not job.pinned:
                self._forget(job)
                return
        raise TooManyJobs(
            f"this client has {self.jobs_of(client)} jobs in the gateway's memory, none of "
            f"them both complete and unwatched; the limit is {self._max_jobs_per_client} "
            "(IRAS_MAX_JOBS_PER_CLIENT): wait for results before submitting more",
            JOBS_RETRY_AFTER_S,
        )

    def _end_wait(self, wait: _Wait, value: ResultJson | None) -> None:
        """Answer a wait (its result, or None) and unpin its job, once: whichever of the
        result, the timer and a cancellation comes first."""
        if wait.ended:
            return
        wait.ended = True
        if wait.timer is not None:
            wait.timer.cancel()
        waiting = self._waiters.get(wait.request_id)
        if waiting is not None and wait in waiting:
            waiting.remove(wait)
            if not waiting:
                del self._waiters[wait.request_id]
        if wait.job is not None:
            wait.job.holds -= 1
        if not wait.future.done():
            wait.future.set_result(value)

    def _take_open_slot(self, client: str) -> None:
        self._open_slots[client] -= 1
        if not self._open_slots[client]:
            del self._open_slots[client]

    def _forget(self, job: Job) -> None:
        self._jobs.pop(job.job_id, None)
        for ref in job.requests:
            self._job_of_request.pop(ref.request_id, None)
        if job.client is not None:
            of_client = self._jobs_of_client.get(job.client, {})
            of_client.pop(job.job_id, None)
            if not of_client:
                self._jobs_of_client.pop(job.client, None)


@dataclass(slots=True, eq=False)
class _Wait:
    """One caller waiting for one request's result."""

    request_id: str
    future: asyncio.Future[ResultJson | None]
    job: Job | None
    timer: asyncio.TimerHandle | None = None
    ended: bool = False
