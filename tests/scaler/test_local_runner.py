"""The local instance runner: real worker processes that follow the embedded AWS's instances."""

from __future__ import annotations

import os
import signal

import pytest

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.scaler.fleet import HEARTBEAT_TAG, Ec2Fleet
from iras.scaler.local_runner import LocalInstanceRunner, cores_shared
from tests.support import wait_until


def worker_env(settings: Settings) -> dict[str, str]:
    """Local workers of the tests' embedded AWS: short polls, one thread, no idle exit."""
    return {
        **os.environ,
        "IRAS_ENDPOINT_URL": str(settings.endpoint_url),
        "IRAS_RECEIVE_WAIT_S": "1",
        "IRAS_INFERENCE_THREADS": "1",
        "IRAS_IDLE_EXIT_S": "0",
    }


async def test_processes_follow_instances_and_instances_follow_processes(
    settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    fleet = Ec2Fleet(
        aws.ec2, settings.model_copy(update={"worker_image_id": "ami-0123456789abcdef0"})
    )
    runner = LocalInstanceRunner(fleet, worker_env(settings))
    first, second = await fleet.launch(["app-tier-instance-1", "app-tier-instance-2"])
    try:
        await runner.sync(await fleet.instances())
        assert runner.running == 2

        # A terminated instance stops its process (gracefully: SIGTERM, exit 0).
        first_process = runner.process_of(first.id)
        assert first_process is not None
        await fleet.terminate([first])
        await runner.sync(await fleet.instances())

        async def first_exited() -> bool:
            return first_process.poll() is not None

        await wait_until(first_exited, timeout_s=60)
        # 0: it stopped by its handler. -SIGTERM only when the signal beat even that handler
        # (the interpreter's first milliseconds); either way nothing was held.
        assert first_process.returncode in {0, -signal.SIGTERM}

        # A process that dies terminates its instance.
        second_process = runner.process_of(second.id)
        assert second_process is not None
        second_process.send_signal(signal.SIGKILL)
        second_process.wait(timeout=10)
        await runner.sync(await fleet.instances())
        states = {
            i.id: i.state
            for i in await fleet.instances(("pending", "running", "shutting-down", "terminated"))
        }
        assert states[second.id] in {"shutting-down", "terminated"}
        await runner.sync(await fleet.instances())
        assert runner.running == 0
    finally:
        await runner.stop_all()


@pytest.mark.parametrize(
    ("env", "workers", "cores", "threads"),
    [
        ({}, 2, 2, "1"),  # this machine: two workers, a core each
        ({}, 2, 8, "4"),
        ({}, 3, 8, "2"),  # what is left over stays free for the gateway and AWS
        ({}, 4, 2, "1"),  # never below one
        ({"IRAS_INFERENCE_THREADS": "2"}, 2, 2, "2"),  # the user's choice stands
    ],
)
def test_local_workers_share_the_cores(
    env: dict[str, str], workers: int, cores: int, threads: str
) -> None:
    shared = cores_shared({"PATH": "/bin", **env}, workers, cores)
    assert shared == {"PATH": "/bin", **env, "IRAS_INFERENCE_THREADS": threads}


async def test_only_the_leader_starts_processes_and_only_for_unclaimed_instances(
    settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    """An instance whose worker tagged it (another gateway's process, after a takeover)
    gets no second worker; a stopping runner ends the instances of its own workers."""
    fleet = Ec2Fleet(
        aws.ec2, settings.model_copy(update={"worker_image_id": "ami-0123456789abcdef0"})
    )
    runner = LocalInstanceRunner(fleet, worker_env(settings))
    claimed, free = await fleet.launch(["app-tier-instance-1", "app-tier-instance-2"])
    await aws.ec2.create_tags(
        Resources=[claimed.id], Tags=[{"Key": HEARTBEAT_TAG, "Value": "1@1700000000"}]
    )
    try:
        await runner.sync(await fleet.instances(), start_new=False)  # a follower's runner
        assert runner.running == 0
        await runner.sync(await fleet.instances())
        assert runner.running == 1
        assert runner.process_of(free.id) is not None and runner.process_of(claimed.id) is None
    finally:
        await runner.stop_all()
    assert [i.id for i in await fleet.instances(("pending", "running"))] == [claimed.id]
