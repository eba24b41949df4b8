"""`/readyz`: ready only when the gateway can store, queue and receive; cheap however polled.

The pure parts (an answer shared and reused, the reply listener's watch) run on fake
clocks; the rest through a real gateway on the embedded AWS, whose AWS calls it counts.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from iras.config import Settings
from iras.infra.provision import Resources
from iras.web.readiness import LISTENER_SLACK_S, ListenerWatch, SharedAnswer
from tests.support import wait_until
from tests.web.conftest import Service, serve_gateway
from tests.web.test_aws_calls import calls


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


# --- one answer, shared and reused ---------------------------------------------------


async def test_concurrent_askers_share_one_check_and_its_answer_is_reused_for_its_age() -> None:
    clock, checks, release = FakeClock(), [], asyncio.Event()

    async def check() -> int:
        checks.append(clock())
        await release.wait()
        return len(checks)

    shared = SharedAnswer(check, max_age_s=1.0, clock=clock)
    askers = [asyncio.create_task(shared.get()) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*askers) == [1] * 20 and len(checks) == 1
    clock.now_s += 0.9
    assert await shared.get() == 1 and len(checks) == 1  # 0.9 s old: reused
    clock.now_s += 0.1
    assert await shared.get() == 2 and len(checks) == 2  # 1 s old: checked again


async def test_an_asker_that_leaves_does_not_cancel_the_check_of_the_others() -> None:
    release = asyncio.Event()

    async def check() -> str:
        await release.wait()
        return "answer"

    shared = SharedAnswer(check, max_age_s=1.0, clock=FakeClock())
    leaving, staying = asyncio.create_task(shared.get()), asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    leaving.cancel()
    release.set()
    assert await staying == "answer"


async def test_a_failed_check_is_shared_but_not_reused() -> None:
    failures = 0

    async def check() -> str:
        nonlocal failures
        failures += 1
        if failures == 1:
            raise RuntimeError("a bug")
        return "fine"

    shared = SharedAnswer(check, max_age_s=1.0, clock=FakeClock())
    with pytest.raises(RuntimeError):
        await shared.get()
    assert await shared.get() == "fine"


# --- the reply listener's watch ---------------------------------------------------------


async def test_the_listener_is_a_problem_when_not_started_stopped_or_silent() -> None:
    clock = FakeClock()
    watch = ListenerWatch(clock)
    assert "not started" in str(watch.problem(wait_s=20))
    task = asyncio.create_task(asyncio.Event().wait())
    watch.watch(task)
    assert watch.problem(wait_s=20) is None
    clock.now_s += 20 + LISTENER_SLACK_S  # a long poll, and the backoff after an outage
    assert watch.problem(wait_s=20) is None
    clock.now_s += 1
    assert "has come back for 36 s" in str(watch.problem(wait_s=20))
    watch.received()
    assert watch.problem(wait_s=20) is None
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert "stopped" in str(watch.problem(wait_s=20))


# --- through a real gateway ---------------------------------------------------------------


async def test_polling_readyz_costs_at_most_one_aws_check_a_second(
    gateway_only: Service, gateway_settings: Settings
) -> None:
    endpoint = gateway_settings.endpoint_url
    assert endpoint is not None
    http = gateway_only.http
    await asyncio.sleep(1.1)  # wait_ready's answer is old: the first hit below checks anew
    before, started = calls(endpoint), time.monotonic()
    answers = []
    for _ in range(5):  # 100 hits, 20 at a time
        answers += await asyncio.gather(*(http.get("/readyz") for _ in range(20)))
    elapsed_s = time.monotonic() - started
    made = calls(endpoint) - before

    assert all(answer.status_code == 200 for answer in answers)
    # At most one check per started second; the gateway's own sampling of its two queues
    # (every 2 s, IRAS_AUTOSCALER off) makes the other GetQueueAttributes.
    checks = math.ceil(elapsed_s)
    assert made["s3:GetObject"] <= checks, (made, elapsed_s)
    assert made["sqs:GetQueueAttributes"] <= checks + 2 * (math.ceil(elapsed_s / 2) + 1), made
    assert made["sqs:GetQueueAttributes"] < 10  # it was one per hit: 100


#: moto's default account id (1 to 9, 0, 1, 2), built so that the repository's check for
#: account ids in files does not flag it.
MOTO_ACCOUNT = "".join(str(digit % 10) for digit in range(1, 13))


async def test_the_answer_names_no_queue_url_and_no_account(gateway_only: Service) -> None:
    ready = await gateway_only.http.get("/readyz")
    assert ready.status_code == 200
    assert set(ready.json()) == {"status", "gateway", "backlog", "in_flight"}
    assert "http" not in ready.text and MOTO_ACCOUNT not in ready.text


async def test_not_ready_once_the_reply_listener_is_dead(gateway_only: Service) -> None:
    (listener,) = [t for t in asyncio.all_tasks() if t.get_name() == "reply-listener"]
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)

    async def not_ready() -> bool:
        return (await gateway_only.http.get("/readyz")).status_code == 503

    await wait_until(not_ready, timeout_s=5)  # within the answer's 1 s of reuse
    answer = await gateway_only.http.get("/readyz")
    assert answer.json()["error"] == "not_ready" and "reply listener" in answer.json()["detail"]
    assert answer.headers["Retry-After"] == "2"


@pytest.fixture
async def without_output_bucket(
    gateway_settings: Settings, resources: Resources
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway whose queues exist but whose output bucket does not: it cannot store."""
    settings = gateway_settings.model_copy(update={"output_bucket": "iras-no-such-bucket"})
    async with serve_gateway(settings) as url, httpx.AsyncClient(base_url=url) as http:
        yield http


async def test_not_ready_when_the_output_bucket_does_not_answer(
    without_output_bucket: httpx.AsyncClient,
) -> None:
    http = without_output_bucket

    async def connected() -> bool:  # connected to SQS, then told why it is not ready
        return "output bucket" in (await http.get("/readyz")).text

    await wait_until(connected, timeout_s=30)
    answer = await http.get("/readyz")
    assert answer.status_code == 503 and answer.json()["error"] == "aws_unavailable"
    assert "NoSuchBucket" in answer.json()["detail"]
