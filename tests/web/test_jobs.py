"""The job book: eviction that never drops anyone attached to a job, and each client's share.

Pure: a fake clock, no network. Waits need an event loop (they are futures), so the tests
that wait are async; none of them sleeps.
"""

from __future__ import annotations

import asyncio

import pytest

from iras.web.jobs import JOBS_RETRY_AFTER_S, Job, JobBook, RequestRef, TooManyJobs


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refs(job_id: str, count: int = 1) -> list[RequestRef]:
    return [RequestRef(f"{job_id}-r{i}", f"{job_id}-{i}.jpg") for i in range(count)]


def add(book: JobBook, job_id: str, client: str | None = None, count: int = 1) -> Job:
    """A job added as the submitter adds one for `client`: through a slot, released once
    its requests are queued; with no client, added alone."""
    if client is None:
        return book.add_job(job_id, refs(job_id, count))
    slot = book.reserve(client)
    job = book.add_job(job_id, refs(job_id, count), slot=slot)
    book.release(slot)
    return job


def result(request_id: str) -> dict[str, object]:
    return {"request_id": request_id, "label": "goldfish"}


def test_the_oldest_job_goes_first_beyond_the_count() -> None:
    book = JobBook(max_jobs=3, ttl_s=60, clock=FakeClock())
    for name in "abcd":
        add(book, name)
    assert len(book) == 3 and book.job("a") is None and book.job("d") is not None


def test_jobs_past_their_age_go() -> None:
    clock = FakeClock()
    book = JobBook(max_jobs=10, ttl_s=60, clock=clock)
    add(book, "old")
    clock.now += 61
    add(book, "new")
    assert book.job("old") is None and book.job("new") is not None


async def test_a_job_with_a_waiter_is_not_evicted_and_gets_its_result() -> None:
    book = JobBook(max_jobs=2, ttl_s=60, clock=FakeClock())
    add(book, "waited")
    answer = book.wait_for("waited-r0", timeout_s=30)
    for i in range(5):  # tiny jobs that would have pushed it out
        add(book, f"tiny{i}")
    assert book.job("waited") is not None
    assert book.job("tiny0") is None  # the others still go, oldest first
    assert book.deliver(result("waited-r0")) is not None
    assert (await answer) == result("waited-r0")


async def test_a_waiter_pins_its_job_even_past_its_age_until_it_is_answered() -> None:
    clock = FakeClock()
    book = JobBook(max_jobs=10, ttl_s=60, clock=clock)
    add(book, "slow")
    answer = book.wait_for("slow-r0", timeout_s=600)
    clock.now += 120
    add(book, "later")
    assert book.job("slow") is not None
    book.deliver(result("slow-r0"))
    await answer
    add(book, "after")  # answered: nobody waits, it is old, it goes
    assert book.job("slow") is None


async def test_the_wait_pins_from_the_call_not_from_the_first_await() -> None:
    """A route gathers its waits; between its call and the first await no job may go."""
    book = JobBook(max_jobs=1, ttl_s=60, clock=FakeClock())
    add(book, "mine", count=2)
    answers = [book.wait_for(f"mine-r{i}", timeout_s=30) for i in range(2)]
    add(book, "other")  # before anything was awaited
    assert book.job("mine") is not None
    for i in range(2):
        book.deliver(result(f"mine-r{i}"))
    assert await asyncio.gather(*answers) == [result("mine-r0"), result("mine-r1")]


async def test_a_wait_that_times_out_or_is_cancelled_unpins_its_job() -> None:
    book = JobBook(max_jobs=1, ttl_s=60, clock=FakeClock())
    add(book, "a")
    assert await book.wait_for("a-r0", timeout_s=0.01) is None
    add(book, "b")
    assert book.job("a") is None
    cancelled = book.wait_for("b-r0", timeout_s=30)
    cancelled.cancel()
    await asyncio.sleep(0)  # the future's done callbacks run on the next turn of the loop
    add(book, "c")
    assert book.job("b") is None


def test_a_submission_in_progress_pins_its_job() -> None:
    """Between add_job and its release the requests go to SQS: the job must stay."""
    book = JobBook(max_jobs=1, ttl_s=60, clock=FakeClock())
    slot = book.reserve("client")
    book.add_job("sending", refs("sending"), slot=slot)
    add(book, "other")
    assert book.job("sending") is not None
    book.release(slot)
    add(book, "another")
    assert book.job("sending") is None


def test_a_subscribed_job_is_not_evicted_until_unsubscribed() -> None:
    book = JobBook(max_jobs=2, ttl_s=60, clock=FakeClock())
    watched = add(book, "watched")
    queue = book.subscribe(watched)
    for i in range(4):
        add(book, f"tiny{i}")
    assert book.job("watched") is not None
    book.deliver(result("watched-r0"))
    assert queue.get_nowait() == result("watched-r0")
    book.unsubscribe(watched, queue)
    add(book, "next")
    assert book.job("watched") is None


def test_when_every_job_is_pinned_the_book_goes_past_its_count() -> None:
    """A soft limit: nothing admitted is dropped; pins are bounded elsewhere."""
    book = JobBook(max_jobs=2, ttl_s=60, clock=FakeClock())
    pinned, queues = [], []
    for i in range(3):  # each followed as soon as it is in, as a page follows its jobs
        pinned.append(add(book, f"p{i}"))
        queues.append(book.subscribe(pinned[-1]))
    add(book, "extra")
    assert len(book) == 4 and all(book.job(job.job_id) for job in pinned)
    for job, queue in zip(pinned, queues, strict=True):
        book.unsubscribe(job, queue)
    add(book, "last")  # back within the count once they let go
    assert len(book) == 2 and book.job("extra") and book.job("last")


def test_a_client_at_its_share_is_refused_before_anything_is_added() -> None:
    book = JobBook(max_jobs=100, ttl_s=60, clock=FakeClock(), max_jobs_per_client=2)
    add(book, "a1", "alice")
    add(book, "a2", "alice")
    with pytest.raises(TooManyJobs) as refused:
        book.reserve("alice")
    assert refused.value.retry_after_s == JOBS_RETRY_AFTER_S
    assert "IRAS_MAX_JOBS_PER_CLIENT" in refused.value.detail and "2" in refused.value.detail
    assert book.jobs_of("alice") == 2 and len(book) == 2
    add(book, "b1", "bob")  # another client is not affected
    assert book.jobs_of("bob") == 1


def test_a_client_at_its_share_makes_room_with_its_own_oldest_complete_job() -> None:
    book = JobBook(max_jobs=100, ttl_s=60, clock=FakeClock(), max_jobs_per_client=2)
    add(book, "b1", "bob")
    add(book, "a1", "alice")
    add(book, "a2", "alice")
    book.deliver(result("a2-r0"))  # complete, nobody attached; a1 is still in progress
    add(book, "a3", "alice")
    assert book.job("a2") is None and book.job("a1") and book.job("a3")
    assert book.job("b1") is not None  # bob's job is not alice's to give up
    assert book.jobs_of("alice") == 2


def test_a_complete_job_someone_follows_does_not_make_room() -> None:
    book = JobBook(max_jobs=100, ttl_s=60, clock=FakeClock(), max_jobs_per_client=1)
    job = add(book, "a1", "alice")
    book.deliver(result("a1-r0"))
    book.subscribe(job)
    with pytest.raises(TooManyJobs):
        book.reserve("alice")


def test_submissions_in_progress_count_in_the_share_and_an_unused_slot_frees_it() -> None:
    book = JobBook(max_jobs=100, ttl_s=60, clock=FakeClock(), max_jobs_per_client=2)
    first, second = book.reserve("alice"), book.reserve("alice")
    with pytest.raises(TooManyJobs):
        book.reserve("alice")  # two uploads being stored already hold the share
    book.release(first)  # refused by AWS: nothing was added
    book.release(first)  # twice is harmless
    assert book.jobs_of("alice") == 1
    book.add_job("a2", refs("a2"), slot=second)  # the slot's place becomes the job's
    book.release(second)
    assert book.jobs_of("alice") == 1 and book.job("a2") is not None
    add(book, "a3", "alice")
    assert book.jobs_of("alice") == 2


def test_forgotten_jobs_free_their_clients_share() -> None:
    clock = FakeClock()
    book = JobBook(max_jobs=100, ttl_s=60, clock=clock, max_jobs_per_client=1)
    add(book, "a1", "alice")
    clock.now += 61  # aged out: reserving forgets it first
    add(book, "a2", "alice")
    book.discard("a2")  # an answered course upload
    add(book, "a3", "alice")
    assert book.jobs_of("alice") == 1 and book.job("a3") is not None


def test_no_cap_when_the_limit_is_zero_or_the_client_unknown() -> None:
    book = JobBook(max_jobs=100, ttl_s=60, clock=FakeClock(), max_jobs_per_client=0)
    for i in range(5):
        add(book, f"a{i}", "alice")
    capped = JobBook(max_jobs=100, ttl_s=60, clock=FakeClock(), max_jobs_per_client=1)
    for i in range(5):
        add(capped, f"n{i}", None)
    assert len(book) == 5 and len(capped) == 5
