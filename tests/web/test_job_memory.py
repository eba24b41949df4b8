"""The job book through a real gateway: a full book does not drop a caller that waits, and
a client over its share of the book is refused before anything of its upload is stored."""

from __future__ import annotations

import asyncio
import re

import httpx

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.messages import INPUTS_PREFIX
from iras.model import Classifier
from tests.support import image_bytes, wait_until
from tests.web.conftest import running_worker, serve_gateway, wait_ready


async def jobs_in_memory(http: httpx.AsyncClient) -> float:
    found = re.search(r"^iras_jobs_in_memory (\S+)$", (await http.get("/metrics")).text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_waiting_callers_get_their_results_while_tiny_jobs_fill_the_book(
    gateway_settings: Settings, resources: Resources, classifier: Classifier
) -> None:
    settings = gateway_settings.model_copy(update={"max_jobs_in_memory": 3, "wait_timeout_s": 30})
    async with (
        serve_gateway(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as http,
    ):
        await wait_ready(http)
        # Two callers wait for their results: no worker yet, so they are in flight.
        waited = asyncio.create_task(
            http.post(
                "/v1/classify?wait=true",
                files=[("files", (f"waited{i}.jpg", image_bytes(seed=30 + i))) for i in range(2)],
            )
        )
        course = asyncio.create_task(
            http.post("/upload", files={"myfile": ("course.jpg", image_bytes(seed=40))})
        )
        await wait_until(lambda: _jobs_are(http, 2))
        # Many tiny jobs after them: each would have evicted the oldest, the waited ones.
        for i in range(10):
            tiny = await http.post(
                "/v1/classify", files=[("files", (f"tiny{i}.jpg", image_bytes(seed=50 + i)))]
            )
            assert tiny.status_code == 200, tiny.text
        assert await jobs_in_memory(http) == 3  # the unwatched ones still go
        async with running_worker(settings, resources, classifier):
            answered, course_answer = await asyncio.wait_for(asyncio.gather(waited, course), 60)
    assert answered.status_code == 200, answered.text
    assert all(entry["result"]["label"] for entry in answered.json()["requests"])
    assert course_answer.status_code == 200, course_answer.text
    assert course_answer.text.startswith("course:")


async def test_a_client_over_its_share_of_jobs_gets_429_and_nothing_is_stored(
    gateway_settings: Settings, resources: Resources, aws: AwsClients
) -> None:
    settings = gateway_settings.model_copy(update={"max_jobs_per_client": 2})
    async with (
        serve_gateway(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        await wait_ready(http)
        for i in range(2):  # no worker: both stay in progress, neither can make room
            files = [("files", (f"kept{i}.jpg", image_bytes(seed=i)))]
            assert (await http.post("/v1/classify", files=files)).status_code == 200
        files = [("files", ("refused.jpg", image_bytes(seed=9)))]
        refused = await http.post("/v1/classify", files=files)
        stored = await aws.objects.list_keys(settings.input_bucket, INPUTS_PREFIX)

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    body = refused.json()
    assert body["error"] == "too_many_jobs" and "IRAS_MAX_JOBS_PER_CLIENT" in body["detail"]
    assert len(stored) == 2  # the refused upload left no image behind


async def _jobs_are(http: httpx.AsyncClient, count: int) -> bool:
    return await jobs_in_memory(http) == count
