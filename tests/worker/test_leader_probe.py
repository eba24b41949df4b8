"""An idle worker leaves its exit to a live scaler: the lease read from the embedded S3.

The probe's answers are checked against lease objects written as the scaler writes them
(`lease_body`, real PutObject), with its clock a number the test moves; then a real
worker with a short idle exit is kept up by a real `Lease` renewing, and exits once the
renewals stop, as when every gateway died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from iras.aws import AwsClients, ObjectStore
from iras.config import Settings
from iras.infra.provision import Resources
from iras.model import Classifier
from iras.scaler.lease import ROUNDS_PER_TTL, Lease, lease_body
from iras.worker.leader import LeaderProbe
from iras.worker.worker import ExitReason, Worker
from tests.support import wait_until

KEY = "scaler/leader.json"
TTL_S = 6.0


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def probe(settings: Settings, aws: AwsClients, clock: Clock) -> LeaderProbe:
    return LeaderProbe(aws.objects, settings.output_bucket, KEY, clock=clock)


async def write(aws: AwsClients, settings: Settings, body: bytes) -> None:
    await aws.objects.put(settings.output_bucket, KEY, body, "application/json")


@pytest.mark.both_aws_clients
async def test_no_lease_object_means_no_scaler_and_is_no_warning(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    probe: LeaderProbe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="iras.worker.leader"):
        assert await probe.alive() is False
    assert caplog.records == []  # the normal case of a fleet without gateways


async def test_no_output_bucket_means_no_scaler(settings: Settings, probe: LeaderProbe) -> None:
    assert await probe.alive() is False


async def test_a_lease_written_free_means_no_scaler(
    settings: Settings, aws: AwsClients, resources: Resources, probe: LeaderProbe
) -> None:
    await write(aws, settings, lease_body(None, 3, 7, TTL_S))  # as a gateway releases it
    assert await probe.alive() is False


async def test_a_held_lease_counts_until_it_stays_unchanged_for_its_ttl(
    settings: Settings, aws: AwsClients, resources: Resources, probe: LeaderProbe, clock: Clock
) -> None:
    await write(aws, settings, lease_body("gateway-a", 1, 0, TTL_S))
    assert await probe.alive() is True  # first read: nothing to compare yet
    clock.now_s += TTL_S - 0.1
    assert await probe.alive() is True  # unchanged, but not for a whole time to live
    clock.now_s += 0.1
    assert await probe.alive() is False  # the holder stopped renewing
    await write(aws, settings, lease_body("gateway-a", 1, 1, TTL_S))
    assert await probe.alive() is True  # renewed: counted from this read
    clock.now_s += TTL_S - 0.1
    assert await probe.alive() is True
    clock.now_s += 0.1
    assert await probe.alive() is False


async def test_the_ttl_counted_is_the_one_the_holder_wrote(
    settings: Settings, aws: AwsClients, resources: Resources, probe: LeaderProbe, clock: Clock
) -> None:
    await write(aws, settings, lease_body("gateway-a", 1, 0, 2 * TTL_S))
    assert await probe.alive() is True
    clock.now_s += 2 * TTL_S - 0.1
    assert await probe.alive() is True
    clock.now_s += 0.1
    assert await probe.alive() is False


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b"null",
        b'{"holder": 7, "ttl_s": 6}',
        b'{"holder": "", "ttl_s": 6}',
        b'{"holder": "gateway-a"}',
        b'{"holder": "gateway-a", "ttl_s": "soon"}',
    ],
    ids=["text", "list", "null", "holder-not-a-name", "holder-empty", "no-ttl", "ttl-not-a-number"],
)
async def test_a_body_that_is_no_lease_means_no_scaler(
    settings: Settings, aws: AwsClients, resources: Resources, probe: LeaderProbe, body: bytes
) -> None:
    await write(aws, settings, body)
    assert await probe.alive() is False
    assert await probe.alive() is False  # read again, unchanged


# --- the worker's idle exit ---------------------------------------------------------

#: Short enough that several idle periods pass in seconds.
IDLE_EXIT_S = 1.0
#: The scaler's time to live here (a gateway's setting has ge=2; the Lease takes any).
LEASE_TTL_S = 1.5
#: The worker checks idleness every quarter idle period (at most a second).
CHECK_S = IDLE_EXIT_S / 4


class CountingProbe(LeaderProbe):
    """The real probe, recording its answers: when the worker asked, and what it heard."""

    def __init__(self, objects: ObjectStore, bucket: str, key: str) -> None:
        super().__init__(objects, bucket, key)
        self.answers: list[bool] = []

    async def alive(self) -> bool:
        answer = await super().alive()
        self.answers.append(answer)
        return answer


async def test_an_idle_worker_stays_while_a_scaler_renews_its_lease_and_exits_after(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
) -> None:
    settings = settings.model_copy(update={"idle_exit_s": IDLE_EXIT_S})
    gateway = Lease(aws.s3, settings.output_bucket, KEY, "gateway-a", LEASE_TTL_S)
    keeping = asyncio.create_task(gateway.keep())
    probe = CountingProbe(aws.objects, settings.output_bucket, KEY)
    worker = Worker(
        settings,
        aws,
        classifier,
        request_queue_url=resources.request_queue_url,
        name="idle-under-a-scaler",
        leader=probe,
    )
    run = asyncio.create_task(worker.run())
    try:
        await wait_until(lambda: _leads(gateway), timeout_s=5)

        async def asked(times: int) -> bool:
            return len(probe.answers) >= times or run.done()

        # Several idle periods, each ending in a question the live scaler answers yes.
        await wait_until(lambda: asked(4), timeout_s=4 * (IDLE_EXIT_S + CHECK_S) + 5)
        assert not run.done(), "exited while a scaler renewed its lease"
        assert probe.answers[:4] == [True] * 4

        keeping.cancel()  # the gateway dies: its lease is neither renewed nor released
        await asyncio.gather(keeping, return_exceptions=True)
        stopped_s = time.monotonic()
        # The probe reads the last renewal at its next question, up to an idle period
        # after it was written; then a whole time to live passes, then comes the question
        # answered no, then the stop's last long poll.
        bound_s = 2 * (IDLE_EXIT_S + CHECK_S) + LEASE_TTL_S + settings.receive_wait_s
        reason = await asyncio.wait_for(run, timeout=bound_s + 3)
        waited_s = time.monotonic() - stopped_s
    finally:
        keeping.cancel()
        if not run.done():
            worker.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(run, 30)
    assert reason is ExitReason.IDLE
    assert probe.answers[-1] is False
    # It waited out the lease: a whole time to live from the last renewal, which the
    # gateway wrote at most a round (a third of it) before it died.
    assert waited_s >= LEASE_TTL_S * (1 - 1 / ROUNDS_PER_TTL) - 0.1
    assert waited_s <= bound_s + 2


async def _leads(lease: Lease) -> bool:
    return lease.held_for_s() > 0
