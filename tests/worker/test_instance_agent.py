"""A worker's instance agent on the embedded AWS's EC2: heartbeat, withdrawal, watch.

The scaler tells a silent worker from a busy one by the `iras:heartbeat` tag changing
(`iras.scaler.liveness`), and a local worker learns that its instance was terminated or
stopped only by asking EC2 (`watch`). Every tag and state here is read back over the EC2
API from instances launched as the scaler launches them; the last test runs the whole
`iras-worker` process on a warm-pool instance.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from iras.aws import AwsClients, BotocoreClient, open_clients
from iras.cli.worker import run_worker
from iras.config import Settings
from iras.infra.provision import Resources
from iras.scaler.fleet import ROLE_TAG, Ec2Fleet, Instance, instance_from
from iras.worker.instance import InstanceAgent
from tests.support import wait_until
from tests.tcp_proxy import tcp_proxy

ROOT = Path(__file__).resolve().parents[2]
#: A beat short enough that a few of them take a second.
BEAT_S = 0.2
#: An id of the right shape that no instance has: moto tags it, but cannot describe it.
NO_SUCH_INSTANCE = "i-0123456789abcdef0"


@pytest.fixture
async def instance(settings: Settings, aws: AwsClients) -> Instance:
    """One worker instance, launched as the scaler launches them (with its tags)."""
    fleet = Ec2Fleet(
        aws.ec2, settings.model_copy(update={"worker_image_id": "ami-0123456789abcdef0"})
    )
    [launched] = await fleet.launch(["app-tier-instance-1"])
    return launched


async def described(ec2: BotocoreClient, instance_id: str) -> tuple[Instance, dict[str, str]]:
    """The instance as EC2 describes it now, and all its tags."""
    response = await ec2.describe_instances(InstanceIds=[instance_id])
    raw = response["Reservations"][0]["Instances"][0]
    return instance_from(raw), {tag["Key"]: tag["Value"] for tag in raw.get("Tags", [])}


async def heartbeat_of(ec2: BotocoreClient, instance_id: str) -> str | None:
    return (await described(ec2, instance_id))[0].heartbeat


def heartbeat_other_than(
    ec2: BotocoreClient, instance_id: str, *seen: str | None
) -> Callable[[], Awaitable[bool]]:
    """A `wait_until` predicate: the instance carries a heartbeat, and not one of `seen`."""

    async def predicate() -> bool:
        value = await heartbeat_of(ec2, instance_id)
        return value is not None and value not in seen

    return predicate


class Gone:
    """An `on_gone` that counts its calls and can be awaited."""

    def __init__(self) -> None:
        self.calls = 0
        self.event = asyncio.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.event.set()


@pytest.fixture
async def running_agents() -> AsyncIterator[list[asyncio.Task[None]]]:
    """Agents' `run()` tasks a test starts, cancelled at its end whatever happened."""
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def start(agent: InstanceAgent, gone: Gone, tasks: list[asyncio.Task[None]]) -> asyncio.Task[None]:
    task = asyncio.create_task(agent.run(gone))
    tasks.append(task)
    return task


async def test_the_heartbeat_is_tagged_as_the_agent_starts_and_changes_every_beat(
    aws: AwsClients, instance: Instance, running_agents: list[asyncio.Task[None]]
) -> None:
    agent = InstanceAgent(aws.ec2, instance.id, BEAT_S, watch=False)
    assert await heartbeat_of(aws.ec2, instance.id) is None
    start(agent, Gone(), running_agents)
    await wait_until(heartbeat_other_than(aws.ec2, instance.id), timeout_s=5)
    first = await heartbeat_of(aws.ec2, instance.id)
    await wait_until(heartbeat_other_than(aws.ec2, instance.id, first), timeout_s=5)
    second = await heartbeat_of(aws.ec2, instance.id)
    await wait_until(heartbeat_other_than(aws.ec2, instance.id, first, second), timeout_s=5)


async def test_withdraw_removes_the_heartbeat_and_only_it(
    aws: AwsClients, instance: Instance, running_agents: list[asyncio.Task[None]]
) -> None:
    # A beat far longer than the test: the tag seen is the one written as the agent starts.
    agent = InstanceAgent(aws.ec2, instance.id, 600, watch=False)
    running = start(agent, Gone(), running_agents)
    await wait_until(heartbeat_other_than(aws.ec2, instance.id), timeout_s=5)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    await agent.withdraw()
    found, tags = await described(aws.ec2, instance.id)
    assert found.heartbeat is None
    assert tags["Name"] == instance.name and ROLE_TAG in tags


async def test_a_heartbeat_of_0_writes_nothing(aws: AwsClients, instance: Instance) -> None:
    agent = InstanceAgent(aws.ec2, instance.id, 0, watch=True)
    gone = Gone()
    await asyncio.wait_for(agent.run(gone), timeout=2)  # returns at once: nothing to do
    await agent.withdraw()
    assert await heartbeat_of(aws.ec2, instance.id) is None
    assert gone.calls == 0


@pytest.mark.parametrize("end", ["terminate_instances", "stop_instances"])
async def test_a_watching_agent_calls_on_gone_once_its_instance_ends(
    aws: AwsClients, instance: Instance, running_agents: list[asyncio.Task[None]], end: str
) -> None:
    agent = InstanceAgent(aws.ec2, instance.id, BEAT_S, watch=True)
    gone = Gone()
    running = start(agent, gone, running_agents)
    await wait_until(heartbeat_other_than(aws.ec2, instance.id), timeout_s=5)
    assert gone.calls == 0  # a running instance is not gone
    await getattr(aws.ec2, end)(InstanceIds=[instance.id])
    await asyncio.wait_for(gone.event.wait(), timeout=5 * BEAT_S + 1)
    await asyncio.wait_for(running, timeout=1)  # the agent's work ends with its instance
    assert gone.calls == 1


async def test_an_agent_that_does_not_watch_keeps_beating_on_an_ended_instance(
    aws: AwsClients, instance: Instance, running_agents: list[asyncio.Task[None]]
) -> None:
    """On EC2 the instance's shutdown stops the worker: the agent itself need not look."""
    agent = InstanceAgent(aws.ec2, instance.id, BEAT_S, watch=False)
    gone = Gone()
    running = start(agent, gone, running_agents)
    await wait_until(heartbeat_other_than(aws.ec2, instance.id), timeout_s=5)
    await aws.ec2.terminate_instances(InstanceIds=[instance.id])
    # Beats after the termination (moto keeps tagging a terminated instance): at least
    # two whole beat periods in which a watching agent would have noticed.
    last = await heartbeat_of(aws.ec2, instance.id)
    for _ in range(3):
        await wait_until(heartbeat_other_than(aws.ec2, instance.id, last), timeout_s=5)
        last = await heartbeat_of(aws.ec2, instance.id)
    assert gone.calls == 0 and not running.done()


async def test_an_instance_ec2_does_not_know_is_logged_and_beaten_again(
    aws: AwsClients,
    resources: Resources,
    running_agents: list[asyncio.Task[None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """moto refuses to describe an unknown instance (InvalidInstanceID.NotFound) as EC2
    does for a while after a launch: not a reason to stop, nor to think it gone."""
    agent = InstanceAgent(aws.ec2, NO_SUCH_INSTANCE, BEAT_S, watch=True)
    gone = Gone()
    with caplog.at_level(logging.WARNING, logger="iras.worker.instance"):
        running = start(agent, gone, running_agents)

        async def failed_beats(count: int) -> bool:
            return len(failures(caplog, NO_SUCH_INSTANCE)) >= count

        await wait_until(lambda: failed_beats(3), timeout_s=10)
    assert not running.done() and gone.calls == 0
    assert "InvalidInstanceID.NotFound" in failures(caplog, NO_SUCH_INSTANCE)[0]


async def test_an_unreachable_ec2_is_logged_and_the_heartbeat_resumes(
    settings: Settings,
    aws: AwsClients,
    instance: Instance,
    running_agents: list[asyncio.Task[None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with tcp_proxy(str(settings.endpoint_url)) as proxy:
        via_proxy = settings.model_copy(update={"endpoint_url": proxy.url, "aws_max_attempts": 1})
        async with open_clients(via_proxy) as cut_off:
            agent = InstanceAgent(cut_off.ec2, instance.id, BEAT_S, watch=True)
            gone = Gone()
            with caplog.at_level(logging.WARNING, logger="iras.worker.instance"):
                running = start(agent, gone, running_agents)
                await wait_until(heartbeat_other_than(aws.ec2, instance.id), timeout_s=5)
                await proxy.cut()
                # Failures from here on are the cut's.
                before = len(failures(caplog, instance.id))

                async def failed_beats(count: int) -> bool:
                    return len(failures(caplog, instance.id)) >= count

                await wait_until(lambda: failed_beats(before + 3), timeout_s=10)
                last = await heartbeat_of(aws.ec2, instance.id)
                assert not running.done() and gone.calls == 0
                await proxy.restore()
                await wait_until(heartbeat_other_than(aws.ec2, instance.id, last), timeout_s=5)
            assert not running.done() and gone.calls == 0
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


def failures(caplog: pytest.LogCaptureFixture, instance_id: str) -> list[str]:
    """The agent's failed-beat warnings about `instance_id`, as logged."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith(f"heartbeat of instance {instance_id} failed")
    ]


async def test_a_watching_worker_stops_gracefully_once_its_instance_is_terminated(
    settings: Settings, aws: AwsClients, resources: Resources, instance: Instance
) -> None:
    """`iras-worker` as `iras serve` runs it locally: the instance's end stops the worker,
    which exits 0, withdraws its heartbeat and leaves the instance as it was ended."""
    local = settings.model_copy(
        update={
            "instance_id": instance.id,
            "instance_watch": True,
            "worker_heartbeat_s": BEAT_S,
            "idle_exit_s": 0,
        }
    )
    running = asyncio.create_task(run_worker(local))
    try:
        await wait_until(heartbeat_other_than(aws.ec2, instance.id), timeout_s=30)
        await aws.ec2.terminate_instances(InstanceIds=[instance.id])
        assert await asyncio.wait_for(running, 30) == 0
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    found, _ = await described(aws.ec2, instance.id)
    assert found.state == "terminated"
    assert found.heartbeat is None


async def test_an_idle_worker_of_a_warm_pool_stops_its_instance_and_withdraws_its_heartbeat(
    settings: Settings, aws: AwsClients, resources: Resources, instance: Instance
) -> None:
    """The whole `iras-worker` on a warm-pool instance, with no scaler's lease: it beats
    from the start, exits idle, removes its heartbeat and stops (not terminates) the
    instance, for the scaler to start again. (Without the warm pool it terminates it:
    `test_worker_process.test_idle_worker_exits_and_terminates_its_instance`.)"""
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "iras.worker",
        cwd=ROOT,
        env={
            **os.environ,
            "IRAS_ENDPOINT_URL": str(settings.endpoint_url),
            "IRAS_RECEIVE_WAIT_S": "1",
            "IRAS_INFERENCE_THREADS": "1",
            "IRAS_IDLE_EXIT_S": "1",
            "IRAS_INSTANCE_ID": instance.id,
            "IRAS_WARM_POOL": "true",
            "IRAS_WORKER_HEARTBEAT_S": "1",
        },
        stderr=asyncio.subprocess.PIPE,
    )
    exited = asyncio.create_task(worker.communicate())
    try:
        # Beaten while the model still loads; withdrawn only as the worker exits.
        await wait_until(heartbeat_other_than(aws.ec2, instance.id), timeout_s=30)
        _, stderr = await asyncio.wait_for(exited, 60)
    finally:
        if worker.returncode is None:
            worker.kill()
            await asyncio.gather(exited, return_exceptions=True)
    log = stderr.decode()
    assert worker.returncode == 0, log
    assert "exits (idle)" in log
    found, _ = await described(aws.ec2, instance.id)
    assert found.state in {"stopping", "stopped"}, log
    assert found.heartbeat is None, log
