"""The cache of jobs rebuilt from the output bucket, with a fake clock and fake fetches."""

from __future__ import annotations

import asyncio

import pytest

from iras.web.jobs import Job, RequestRef
from iras.web.stored_jobs import StoredJobs


class FakeBucket:
    """Manifests and results as the output bucket holds them; counts the fetches."""

    def __init__(self) -> None:
        self.jobs: dict[str, list[str]] = {}
        self.results: set[str] = set()
        self.builds = 0
        self.refreshes = 0
        self.gate: asyncio.Event | None = None  # when set, fetches wait for it
        self.fail = False

    def add(self, job_id: str, requests: int, done: int = 0) -> None:
        ids = [f"{job_id}-{i}" for i in range(requests)]
        self.jobs[job_id] = ids
        self.results.update(ids[:done])

    async def build(self, job_id: str) -> Job | None:
        self.builds += 1
        await self._wait()
        ids = self.jobs.get(job_id)
        return None if ids is None else Job(job_id, [RequestRef(i, i) for i in ids], 0.0)

    async def refresh(self, job: Job) -> None:
        self.refreshes += 1
        await self._wait()
        if self.fail:
            raise OSError("S3 is away")
        for ref in job.requests:
            if ref.request_id in self.results:
                job.results[ref.request_id] = {"request_id": ref.request_id}

    async def _wait(self) -> None:
        if self.gate is not None:
            await self.gate.wait()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def lookup(
    stored: StoredJobs, bucket: FakeBucket, job_id: str, with_results: bool = True
) -> asyncio.Future[Job | None]:
    return asyncio.ensure_future(
        stored.job(job_id, lambda: bucket.build(job_id), bucket.refresh, with_results=with_results)
    )


async def test_a_complete_job_is_fetched_once() -> None:
    bucket, stored = FakeBucket(), StoredJobs(clock=Clock())
    bucket.add("done", 500, done=500)
    for _ in range(100):
        job = await lookup(stored, bucket, "done")
        assert job is not None and job.done
    assert (bucket.builds, bucket.refreshes) == (1, 1)


async def test_a_pending_job_is_refreshed_at_most_once_per_interval() -> None:
    clock = Clock()
    bucket, stored = FakeBucket(), StoredJobs(refresh_s=1.0, clock=clock)
    bucket.add("pending", 10, done=3)
    for step in range(50):  # 5 s of polls, 10 a second
        clock.now = step * 0.1
        job = await lookup(stored, bucket, "pending")
        assert job is not None and len(job.results) == 3
    assert bucket.refreshes == 5
    bucket.results.update(f"pending-{i}" for i in range(10))
    clock.now = 6.0
    job = await lookup(stored, bucket, "pending")
    assert job is not None and job.done and bucket.refreshes == 6
    clock.now = 100.0
    await lookup(stored, bucket, "pending")
    assert bucket.refreshes == 6  # complete: never again


async def test_concurrent_lookups_share_one_fetch() -> None:
    bucket, stored = FakeBucket(), StoredJobs(clock=Clock())
    bucket.add("job", 500, done=200)
    bucket.gate = asyncio.Event()
    waiting = [lookup(stored, bucket, "job") for _ in range(50)]
    await asyncio.sleep(0)
    bucket.gate.set()
    jobs = await asyncio.gather(*waiting)
    assert all(job is jobs[0] for job in jobs) and len(jobs[0].results) == 200  # type: ignore[union-attr]
    assert (bucket.builds, bucket.refreshes) == (1, 1)


async def test_a_caller_that_gives_up_does_not_cancel_the_shared_fetch() -> None:
    bucket, stored = FakeBucket(), StoredJobs(clock=Clock())
    bucket.add("job", 5, done=5)
    bucket.gate = asyncio.Event()
    impatient, patient = lookup(stored, bucket, "job"), lookup(stored, bucket, "job")
    await asyncio.sleep(0)
    impatient.cancel()
    bucket.gate.set()
    job = await patient
    assert job is not None and job.done and bucket.builds == 1


async def test_an_owner_check_needs_only_the_manifest() -> None:
    bucket, stored = FakeBucket(), StoredJobs(clock=Clock())
    bucket.add("job", 500, done=500)
    job = await lookup(stored, bucket, "job", with_results=False)
    assert job is not None and not job.results and (bucket.builds, bucket.refreshes) == (1, 0)
    job = await lookup(stored, bucket, "job")
    assert job is not None and job.done and (bucket.builds, bucket.refreshes) == (1, 1)


async def test_memory_is_bounded_by_jobs_and_by_requests() -> None:
    bucket = FakeBucket()
    for i in range(10):
        bucket.add(f"small-{i}", 10, done=10)
        bucket.add(f"big-{i}", 500, done=500)
    stored = StoredJobs(max_jobs=4, max_requests=1000, clock=Clock())
    for i in range(10):
        await lookup(stored, bucket, f"small-{i}")
    assert len(stored) == 4 and stored.requests == 40
    await lookup(stored, bucket, "small-6")  # used: now the most recent
    for i in range(3):
        await lookup(stored, bucket, f"big-{i}")
        assert stored.requests <= 1000
    assert len(stored) == 2 and stored.requests == 1000  # big-1, big-2
    builds = bucket.builds
    await lookup(stored, bucket, "big-2")
    assert bucket.builds == builds  # kept
    await lookup(stored, bucket, "small-6")
    assert bucket.builds == builds + 1  # forgotten: rebuilt


async def test_a_failed_refresh_is_retried_by_the_next_caller_and_a_missing_job_not_kept() -> None:
    bucket, stored = FakeBucket(), StoredJobs(clock=Clock())
    bucket.add("job", 5, done=5)
    bucket.fail = True
    with pytest.raises(OSError):
        await lookup(stored, bucket, "job")
    bucket.fail = False
    job = await lookup(stored, bucket, "job")
    assert job is not None and job.done and bucket.refreshes == 2
    assert await lookup(stored, bucket, "nope") is None
    assert await lookup(stored, bucket, "nope") is None
    assert len(stored) == 1 and bucket.builds == 3  # a miss is asked again: it may appear
