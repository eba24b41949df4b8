"""A worker whose loop crashes exits 1, hands back what it held and keeps its instance.

On EC2 the exit code is what tells systemd to restart the worker and, once the restarts
are used up, to end the instance (deploy/app-tier/iras-worker-failed.service); the worker
itself must not end its instance on a crash, as it does on an idle exit.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from tests.support import image_bytes, queue_counts, submit, wait_until

ROOT = Path(__file__).resolve().parents[2]


async def test_a_worker_whose_loop_crashes_exits_1_and_keeps_its_instance(
    settings: Settings, aws: AwsClients, resources: Resources, reply_queue: str
) -> None:
    launched = await aws.ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    instance_id = launched["Instances"][0]["InstanceId"]
    await submit(aws, settings, resources, {"crash.jpg": image_bytes(seed=1)}, reply_queue)
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.worker.crashing_worker",
        cwd=ROOT,
        env={
            **os.environ,
            "IRAS_ENDPOINT_URL": str(settings.endpoint_url),
            "IRAS_RECEIVE_WAIT_S": "1",
            "IRAS_INFERENCE_THREADS": "1",
            # An idle exit would end the instance: a crash must not be taken for one.
            "IRAS_IDLE_EXIT_S": "1",
            "IRAS_INSTANCE_ID": instance_id,
            # Hidden for 5 minutes unless handed back: the check below sees the hand-back.
            "IRAS_VISIBILITY_TIMEOUT_S": "300",
        },
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(worker.communicate(), 60)
    finally:
        if worker.returncode is None:
            worker.kill()
    log = stderr.decode()
    assert worker.returncode == 1, log
    assert "worker loop fetcher crashed" in log and "PlantedBug" in log
    assert "exits (crashed)" in log

    described = await aws.ec2.describe_instances(InstanceIds=[instance_id])
    state = described["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in {"pending", "running"}
    # The request it was downloading went back to the queue at once, for another worker.
    await wait_until(lambda: _visible(aws, resources.request_queue_url, 1), timeout_s=5)


async def _visible(aws: AwsClients, queue_url: str, count: int) -> bool:
    return await queue_counts(aws, queue_url) == (count, 0)
