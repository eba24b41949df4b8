"""`iras-worker` as a real process: signals, idle exit, self-termination on EC2, burst."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from tests.support import collect_results, image_bytes, queue_counts, submit, wait_until


def start_worker(settings: Settings, *args: str, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "iras.worker", *args],
        env={
            **os.environ,
            "IRAS_ENDPOINT_URL": str(settings.endpoint_url),
            "IRAS_RECEIVE_WAIT_S": "1",
            "IRAS_INFERENCE_THREADS": "1",
            **env,
        },
    )


async def wait_exit(process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> int:
    return await asyncio.wait_for(asyncio.to_thread(process.wait), timeout_s)


async def test_sigterm_mid_work_loses_no_message(
    settings: Settings, aws: AwsClients, resources: Resources, reply_queue: str
) -> None:
    count = 40
    images = {f"s{i}.jpg": image_bytes(seed=i) for i in range(count)}
    requests = await submit(aws, settings, resources, images, reply_queue)
    worker = start_worker(
        settings, IRAS_BATCH_SIZE="1", IRAS_VISIBILITY_TIMEOUT_S="300", IRAS_IDLE_EXIT_S="0"
    )
    try:
        answered = await collect_results(aws, reply_queue, 1)
        worker.send_signal(signal.SIGTERM)
        assert await wait_exit(worker) == 0
    finally:
        worker.kill()
    # Nothing stays in flight (the visibility timeout is 300 s): every request was either
    # answered or handed back, visible again for the next worker. (The embedded AWS updates
    # its counts a moment after the hand-back, hence the short wait.)
    await wait_until(lambda: _nothing_in_flight(aws, resources.request_queue_url), timeout_s=5)
    visible, _ = await queue_counts(aws, resources.request_queue_url)
    answered += await collect_results(aws, reply_queue, count - visible - len(answered), 10)
    assert visible + len(answered) == count
    assert {r.request_id for r in answered} <= {r.request_id for r in requests}
    assert len({r.request_id for r in answered}) == len(answered)


async def _nothing_in_flight(aws: AwsClients, queue_url: str) -> bool:
    return (await queue_counts(aws, queue_url))[1] == 0


async def test_idle_worker_exits_and_terminates_its_instance(
    settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    launched = await aws.ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    instance_id = launched["Instances"][0]["InstanceId"]
    worker = start_worker(settings, IRAS_IDLE_EXIT_S="1", IRAS_INSTANCE_ID=instance_id)
    try:
        assert await wait_exit(worker) == 0
    finally:
        worker.kill()
    described = await aws.ec2.describe_instances(InstanceIds=[instance_id])
    state = described["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in {"shutting-down", "terminated"}


async def test_burst_worker_answers_what_is_queued_then_exits_0(
    settings: Settings, aws: AwsClients, resources: Resources, reply_queue: str
) -> None:
    """`--burst`: work until the queue is empty, exit 0, and leave the instance alone (it
    did not go idle: it was told to run out of work)."""
    launched = await aws.ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    instance_id = launched["Instances"][0]["InstanceId"]
    images = {f"b{i}.jpg": image_bytes(seed=i) for i in range(3)}
    requests = await submit(aws, settings, resources, images, reply_queue)
    worker = start_worker(settings, "--burst", IRAS_IDLE_EXIT_S="0", IRAS_INSTANCE_ID=instance_id)
    try:
        assert await wait_exit(worker) == 0
    finally:
        worker.kill()
    answered = await collect_results(aws, reply_queue, len(images), timeout_s=10)
    assert {r.request_id for r in answered} == {r.request_id for r in requests}
    assert await queue_counts(aws, resources.request_queue_url) == (0, 0)
    described = await aws.ec2.describe_instances(InstanceIds=[instance_id])
    state = described["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state not in {"shutting-down", "terminated"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IRAS_BATCH_SIZE": "0"}, "IRAS_BATCH_SIZE"),
        ({"IRAS_MODEL_NAME": "nope"}, "nope"),
        ({"IRAS_REQUEST_QUEUE": "no-such-queue"}, "iras provision"),
    ],
    ids=["bad-setting", "unknown-model", "missing-queue"],
)
async def test_worker_refuses_to_start_with_a_clear_message(
    settings: Settings, resources: Resources, env: dict[str, str], message: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "iras.worker",
        env={**os.environ, "IRAS_ENDPOINT_URL": str(settings.endpoint_url), **env},
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode in {1, 2}
    assert message in stderr.decode()
    assert "Traceback" not in stderr.decode()


def test_worker_help_documents_it() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "iras.worker", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for phrase in ("SIGTERM", "IRAS_IDLE_EXIT_S", "IRAS_INSTANCE_ID", "--batch-size", "--burst"):
        assert phrase in out
