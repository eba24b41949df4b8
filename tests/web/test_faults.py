"""Faults between the tiers: SQS delivers at least once, and a client must not notice;
a request no worker can get through ends in the dead-letter queue, in plain sight."""

from __future__ import annotations

import asyncio
import json
import re

import websockets

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.model import Classifier, Outcome
from tests.support import image_bytes, wait_until
from tests.web.conftest import Service, running_worker


async def test_a_request_delivered_twice_gives_one_result_seen_once(
    gateway_only: Service,
    gateway_settings: Settings,
    resources: Resources,
    aws: AwsClients,
    classifier: Classifier,
) -> None:
    files = [("files", (f"d{i}.jpg", image_bytes(seed=90 + i))) for i in range(3)]
    job = (await gateway_only.http.post("/v1/classify", files=files)).json()
    # Every request message is in the queue twice, as SQS may deliver it.
    bodies = await _take_all(aws, resources.request_queue_url, 3)
    for body in bodies * 2:
        await aws.sqs.send_message(QueueUrl=resources.request_queue_url, MessageBody=body)

    ws_path = f"{gateway_only.ws_url}/v1/jobs/{job['job_id']}/ws"
    async with (
        websockets.connect(ws_path) as live,
        running_worker(gateway_settings, resources, classifier),
    ):
        streamed = [json.loads(m) async for m in live]  # closes once the job is done
        await wait_until(lambda: _all_handled(gateway_only, 6), timeout_s=60)
    async with websockets.connect(ws_path) as later:  # replays the job from the start
        replayed = [json.loads(m) async for m in later]
    state = (await gateway_only.http.get(f"/v1/jobs/{job['job_id']}")).json()

    request_ids = sorted(r["request_id"] for r in job["requests"])
    assert sorted(m["request_id"] for m in streamed) == request_ids
    assert sorted(m["request_id"] for m in replayed) == request_ids
    assert state["done"] == 3 and len(state["requests"]) == 3
    assert await _result_counts(gateway_only) == (3, 3)  # results, duplicates ignored


class _CrashingModel:
    """A model that fails every batch, as one crashed by a poison input would."""

    name = "crashing"

    def classify(self, blobs: object, top_k: int = 5) -> list[Outcome]:
        raise RuntimeError("the model crashed")


async def test_a_request_that_keeps_failing_lands_in_the_dead_letter_queue(
    gateway_only: Service, gateway_settings: Settings, resources: Resources
) -> None:
    files = [("files", ("poison.jpg", image_bytes(seed=99)))]
    job = (await gateway_only.http.post("/v1/classify", files=files)).json()
    # Each failed try leaves the message to come back after the visibility timeout.
    quick_retries = gateway_settings.model_copy(update={"visibility_timeout_s": 1})

    async with running_worker(quick_retries, resources, _CrashingModel()):  # type: ignore[arg-type]
        await wait_until(lambda: _dead_letters(gateway_only, 1), timeout_s=60)

    state = (await gateway_only.http.get(f"/v1/jobs/{job['job_id']}")).json()
    assert state["done"] == 0


async def _dead_letters(service: Service, expected: int) -> bool:
    text = (await service.http.get("/metrics")).text
    found = re.search(
        r'^iras_queue_messages\{queue="dead_letter",state="visible"\} (\S+)$', text, re.M
    )
    return found is not None and float(found.group(1)) >= expected


async def _take_all(aws: AwsClients, queue_url: str, count: int) -> list[str]:
    """Receive and delete `count` messages; their bodies."""
    bodies: list[str] = []
    async with asyncio.timeout(30):
        while len(bodies) < count:
            response = await aws.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            for message in response.get("Messages", []):
                bodies.append(message["Body"])
                await aws.sqs.delete_message(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
    return bodies


async def _result_counts(service: Service) -> tuple[int, int]:
    """(results taken as new, results recognised as duplicates) from the gateway's metrics."""
    text = (await service.http.get("/metrics")).text

    def total(metric: str) -> int:
        counts = re.findall(rf"^{metric}_total(?:{{[^}}]*}})? (\S+)$", text, re.M)
        return int(sum(float(count) for count in counts))

    return total("iras_results"), total("iras_unmatched_results")


async def _all_handled(service: Service, expected: int) -> bool:
    return sum(await _result_counts(service)) >= expected
