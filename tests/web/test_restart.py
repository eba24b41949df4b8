"""A gateway restarted mid-load loses nothing: with a fixed id it keeps its reply queue,
and the next one drains what came meanwhile; every result is still there to be read."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets

from iras.aws import AwsClients
from iras.bench.serve_process import free_port
from iras.config import Settings
from iras.infra.provision import Resources
from iras.messages import Result, encode_result
from iras.model import Classifier, Prediction
from iras.web.replies import create_reply_queue
from tests.support import image_bytes, queue_counts, wait_until
from tests.web.conftest import running_worker, serve_gateway, wait_ready

JOBS = 10
IMAGES_PER_JOB = 3
#: Jobs accepted before the gateway is killed; the others are in flight or not yet sent.
KILL_AFTER_JOBS = 5


async def test_a_gateway_with_an_id_drains_the_queue_it_finds_and_keeps_it_at_stop(
    gateway_settings: Settings, resources: Resources, aws: AwsClients
) -> None:
    # The queue as an earlier gateway web-7 left it, with replies for jobs nobody here knows.
    # (Not left by a gateway run here: the last long polls of a stopped gateway may still
    # take a reply, which then comes back only after the queue's visibility timeout.)
    reply_queue = await create_reply_queue(aws.sqs, "iras-replies-web-7")
    for _ in range(3):
        result = Result(uuid.uuid4().hex, "old-job", "a.jpg", "m", "w", label="cat")
        await aws.sqs.send_message(QueueUrl=reply_queue, MessageBody=encode_result(result))

    fixed = gateway_settings.model_copy(update={"gateway_id": "web-7"})
    async with serve_gateway(fixed) as url, httpx.AsyncClient(base_url=url) as http:
        await wait_ready(http)
        ready = (await http.get("/readyz")).json()
        assert ready["gateway"] == "web-7"  # its queue, found again: drained below
        await wait_until(lambda: _drained(http, reply_queue, aws, 3), timeout_s=30)
        assert _metric(await _metrics(http), "iras_unmatched_results_total") == 0
    listed = (await aws.sqs.list_queues(QueueNamePrefix="iras-replies"))["QueueUrls"]
    assert listed == [reply_queue]  # kept at stop, for the next gateway web-7


async def test_a_queue_of_that_name_with_other_attributes_is_reported_not_taken(
    gateway_settings: Settings, resources: Resources, aws: AwsClients
) -> None:
    await aws.sqs.create_queue(
        QueueName="iras-replies-web-8", Attributes={"VisibilityTimeout": "5"}
    )
    fixed = gateway_settings.model_copy(update={"gateway_id": "web-8"})
    async with serve_gateway(fixed) as url, httpx.AsyncClient(base_url=url) as http:

        async def says_what_to_do() -> bool:
            ready = await http.get("/readyz")
            return ready.status_code == 503 and "IRAS_GATEWAY_ID" in ready.text

        await wait_until(says_what_to_do, timeout_s=10)


@pytest.mark.slow
async def test_a_gateway_killed_mid_load_loses_no_result_and_the_next_drains_its_replies(
    gateway_settings: Settings,
    resources: Resources,
    aws: AwsClients,
    classifier: Classifier,
    tmp_path: Path,
) -> None:
    fixed = gateway_settings.model_copy(update={"gateway_id": "restart-test"})
    images = _images()
    expected = await asyncio.to_thread(_labels, classifier, images)

    # No worker runs yet: every request accepted is still pending when the gateway dies.
    async with gateway_process(fixed, tmp_path / "first.log") as first:
        jobs = await _submit_and_kill(first, images)
    assert len(jobs) >= KILL_AFTER_JOBS
    reply_queue = f"{resources.request_queue_url.rsplit('/', 1)[0]}/iras-replies-restart-test"

    # Workers answer while no gateway runs: the replies wait in the queue the dead one left.
    async with running_worker(fixed, resources, classifier):

        async def all_answered() -> bool:
            requests = await queue_counts(aws, resources.request_queue_url)
            replies = await queue_counts(aws, reply_queue)
            return requests == (0, 0) and replies[1] == 0

        await wait_until(all_answered, timeout_s=120, period_s=0.5)
    # Requests whose answer the kill cut off may have been queued too: they count here.
    answered, _ = await queue_counts(aws, reply_queue)
    assert answered >= sum(len(names) for names in jobs.values())

    async with gateway_process(fixed, tmp_path / "second.log") as second:
        assert (await second.http.get("/readyz")).json()["gateway"] == "restart-test"
        await wait_until(lambda: _drained(second.http, reply_queue, aws, answered), timeout_s=60)
        for job_id, names in jobs.items():
            state = (await second.http.get(f"/v1/jobs/{job_id}")).json()
            assert state["status"] == "done", state
            assert [entry["name"] for entry in state["requests"]] == names
            for entry in state["requests"]:
                found = await second.http.get(f"/v1/results/{entry['request_id']}")
                assert found.status_code == 200, found.text
                result = found.json()
                assert result["name"] == entry["name"] and result["job_id"] == job_id
                assert result["label"] == expected[entry["name"]]
        some_job = next(iter(jobs))
        streamed = await _streamed(second.url, some_job)
        assert sorted(result["name"] for result in streamed) == sorted(jobs[some_job])
    print(f"\nrestart: {len(jobs)} of {JOBS} jobs accepted before the kill, {answered} answered")


@dataclass
class GatewayProcess:
    url: str
    http: httpx.AsyncClient
    process: subprocess.Popen[bytes]


@contextlib.asynccontextmanager
async def gateway_process(settings: Settings, log_path: Path) -> AsyncIterator[GatewayProcess]:
    """`iras gateway` as production runs it, against the test's AWS, ready; stopped after
    the block unless the block killed it."""
    assert settings.endpoint_url is not None and settings.gateway_id is not None
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in {"IRAS_ENDPOINT_URL", "AWS_ENDPOINT_URL"}
    }
    env |= {
        "IRAS_GATEWAY_ID": settings.gateway_id,
        "IRAS_AUTOSCALER": "false",
        "IRAS_RECEIVE_WAIT_S": str(settings.receive_wait_s),
    }
    command = [sys.executable, "-m", "iras", "gateway", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--endpoint-url", settings.endpoint_url]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
            command, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            async with asyncio.timeout(60):
                while True:
                    assert process.poll() is None, log_path.read_text()
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
            yield GatewayProcess(url, http, process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), 30)
            except TimeoutError:
                process.kill()


def _images() -> dict[str, bytes]:
    """JOBS * IMAGES_PER_JOB distinct images, by file name, in job order."""
    images = {}
    for index in range(JOBS * IMAGES_PER_JOB):
        job, position = divmod(index, IMAGES_PER_JOB)
        colour = ((index * 67) % 256, (index * 131) % 256, (index * 29) % 256)
        size = (160 + 13 * index, 120 + 7 * index)  # labels vary: a screen, a clock, velvet...
        images[f"job{job}_{position}.jpg"] = image_bytes(size, colour, seed=index)
    return images


async def _submit_and_kill(
    gateway: GatewayProcess, images: dict[str, bytes]
) -> dict[str, list[str]]:
    """Post the images as JOBS jobs, a few at a time, and SIGKILL the gateway once
    KILL_AFTER_JOBS are accepted; the accepted jobs' ids and their file names."""
    names = list(images)
    accepted: dict[str, list[str]] = {}
    slots = asyncio.Semaphore(3)

    async def post(job: int) -> None:
        mine = names[job * IMAGES_PER_JOB : (job + 1) * IMAGES_PER_JOB]
        async with slots:
            if gateway.process.poll() is not None:
                return
            try:
                response = await gateway.http.post(
                    "/v1/classify", files=[("files", (name, images[name])) for name in mine]
                )
            except httpx.TransportError:
                return  # cut off by the kill: not accepted as far as the client knows
        assert response.status_code == 200, response.text
        accepted[response.json()["job_id"]] = mine
        if len(accepted) == KILL_AFTER_JOBS:
            gateway.process.kill()  # SIGKILL: no stop, no goodbye

    await asyncio.gather(*(post(job) for job in range(JOBS)))
    await asyncio.wait_for(asyncio.to_thread(gateway.process.wait), 30)
    return accepted


def _labels(classifier: Classifier, images: dict[str, bytes]) -> dict[str, str]:
    labels = {}
    for name, outcome in zip(images, classifier.classify(list(images.values())), strict=True):
        assert isinstance(outcome, Prediction)
        labels[name] = outcome.label
    return labels


async def _streamed(url: str, job_id: str) -> list[dict[str, object]]:
    ws_url = url.replace("http://", "ws://", 1)
    async with asyncio.timeout(30), websockets.connect(f"{ws_url}/v1/jobs/{job_id}/ws") as live:
        return [json.loads(message) async for message in live]  # closes once complete


async def _drained(http: httpx.AsyncClient, reply_queue: str, aws: AwsClients, count: int) -> bool:
    """The gateway took `count` replies for jobs it did not know, and the queue is empty."""
    drained = _metric(await _metrics(http), "iras_drained_results_total")
    return drained == count and await queue_counts(aws, reply_queue) == (0, 0)


async def _metrics(http: httpx.AsyncClient) -> str:
    return (await http.get("/metrics")).text


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0
