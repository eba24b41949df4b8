"""The gateway's life: not ready without queues, a reply queue of its own, timeouts that lose nothing."""

from __future__ import annotations

import asyncio

import httpx

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources, provision
from tests.support import image_bytes, queue_counts
from tests.web.conftest import serve_gateway, wait_ready


async def test_without_queues_it_is_not_ready_and_says_why(
    settings: Settings, aws: AwsClients
) -> None:
    async with (
        serve_gateway(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        async with asyncio.timeout(10):  # the first connection attempt is under way
            while "iras provision" not in (ready := await http.get("/readyz")).text:
                assert ready.status_code == 503
                await asyncio.sleep(0.05)
        assert ready.status_code == 503 and ready.json()["error"] == "not_ready"
        upload = await http.post("/upload", files={"myfile": ("a.jpg", image_bytes())})
        assert upload.status_code == 503
        assert upload.json()["error"] == "not_ready" and upload.headers["retry-after"]
        assert (await http.get("/healthz")).status_code == 200
        # Provisioned later, the gateway connects by itself.
        await provision(settings, aws)
        await wait_ready(http)


async def test_each_gateway_has_its_own_reply_queue_deleted_at_stop(
    settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    async with (
        serve_gateway(settings) as first_url,
        serve_gateway(settings) as second_url,
        httpx.AsyncClient() as http,
    ):
        for url in (first_url, second_url):
            async with httpx.AsyncClient(base_url=url) as client:
                await wait_ready(client)
        first = (await http.get(f"{first_url}/readyz")).json()["gateway"]
        second = (await http.get(f"{second_url}/readyz")).json()["gateway"]
        assert first != second
        listed = (await aws.sqs.list_queues(QueueNamePrefix="iras-replies"))["QueueUrls"]
        names = sorted(queue_url.rsplit("/", 1)[1] for queue_url in listed)
        assert names == sorted(f"{settings.reply_queue_prefix}-{g}" for g in (first, second))
    listed = (await aws.sqs.list_queues(QueueNamePrefix="iras-replies")).get("QueueUrls", [])
    assert listed == []


async def test_a_wait_past_the_timeout_is_a_504_and_the_work_stays_queued(
    settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    impatient = settings.model_copy(update={"wait_timeout_s": 1.0})
    async with (
        serve_gateway(impatient) as url,  # no worker is running
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        await wait_ready(http)
        response = await http.post("/upload", files={"myfile": ("late.jpg", image_bytes())})
        assert response.status_code == 504
        body = response.json()
        assert body["error"] == "result_timeout" and "/v1/results/" in body["detail"]
        assert await queue_counts(aws, resources.request_queue_url) == (1, 0)
        assert "iras_wait_timeouts_total 1.0" in (await http.get("/metrics")).text
