"""`/readyz?deep=1`: a golden image classified end to end through a real worker."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from iras.config import Settings
from iras.infra.provision import Resources
from iras.model import Classifier
from iras.web.golden import golden_jpeg
from tests.support import wait_until
from tests.web.conftest import Service, running_worker, serve_gateway, wait_ready
from tests.web.test_openapi import assert_documented, served_document

KEY = "deep-check-key-0123456789"


def test_the_golden_image_is_a_small_valid_jpeg_the_same_every_time() -> None:
    blob = golden_jpeg()
    with Image.open(io.BytesIO(blob)) as image:
        assert image.format == "JPEG" and image.size == (64, 64)
        image.load()
    assert len(blob) < 5_000 and golden_jpeg() == blob


async def test_deep_readiness_reports_the_golden_images_trip(service: Service) -> None:
    started = time.monotonic()
    answer = await service.http.get("/readyz", params={"deep": "1"})
    took_s = time.monotonic() - started

    assert answer.status_code == 200, answer.text
    body = assert_documented(await served_document(service.http), answer, "get", "/readyz")
    trip = body["deep"]
    assert body["status"] == "ready"
    assert trip["worker"] == "test-worker" and trip["label"] and trip["model"]
    assert 0 < trip["elapsed_s"] <= took_s
    result = await service.http.get(f"/v1/results/{trip['request_id']}")  # a normal request
    assert result.status_code == 200 and result.json()["label"] == trip["label"]
    assert result.json()["name"] == "iras-readiness-golden.jpg"


async def test_concurrent_deep_checks_share_one_golden_image(service: Service) -> None:
    answers = await asyncio.gather(*(service.http.get("/readyz?deep=true") for _ in range(5)))
    assert all(answer.status_code == 200 for answer in answers)
    assert len({answer.json()["deep"]["request_id"] for answer in answers}) == 1
    metrics = (await service.http.get("/metrics")).text
    assert "iras_images_accepted_total 1.0" in metrics


async def test_a_short_timeout_does_not_cut_a_later_callers_longer_wait(
    gateway_only: Service,
    gateway_settings: Settings,
    resources: Resources,
    classifier: Classifier,
) -> None:
    """Found by fuzzing: the shared golden image was waited for only as long as its first
    caller asked, so a later caller of a longer wait got `golden_image_timeout` with it."""
    http = gateway_only.http
    impatient = asyncio.create_task(http.get("/readyz?deep=true&timeout_s=1"))

    async def image_sent() -> bool:  # the impatient caller's golden image is on its way
        return "iras_images_accepted_total 1.0" in (await http.get("/metrics")).text

    await wait_until(image_sent, timeout_s=10)
    patient = asyncio.create_task(http.get("/readyz?deep=true&timeout_s=60"))
    assert (await impatient).status_code == 503  # no worker within its second
    async with running_worker(gateway_settings, resources, classifier):
        answer = await patient  # the same image, answered once a worker runs
    assert answer.status_code == 200, answer.text
    assert answer.json()["deep"]["label"]


async def test_without_a_worker_deep_readiness_is_503_after_its_timeout(
    gateway_only: Service,
) -> None:
    assert (await gateway_only.http.get("/readyz")).status_code == 200  # shallow: fine
    started = time.monotonic()
    answer = await gateway_only.http.get("/readyz", params={"deep": "1", "timeout_s": "1.5"})
    took_s = time.monotonic() - started

    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert answer.json()["error"] == "golden_image_timeout"
    assert "1.5 s" in answer.json()["detail"]
    assert 1.5 <= took_s < 5
    assert_documented(await served_document(gateway_only.http), answer, "get", "/readyz")
    for bad in ({"deep": "1", "timeout_s": "0"}, {"deep": "1", "timeout_s": "301"}):
        refused = await gateway_only.http.get("/readyz", params=bad)
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_request"


@pytest.fixture
async def keyed_service(
    gateway_settings: Settings, resources: Resources, classifier: Classifier
) -> AsyncIterator[str]:
    settings = gateway_settings.model_copy(update={"api_keys": (KEY,)})
    async with serve_gateway(settings) as url, running_worker(settings, resources, classifier):
        async with httpx.AsyncClient(base_url=url) as http:
            await wait_ready(http)
        yield url


async def test_with_keys_on_deep_readiness_is_an_api_call(keyed_service: str) -> None:
    async with httpx.AsyncClient(base_url=keyed_service, timeout=60) as http:
        assert (await http.get("/readyz")).status_code == 200  # a load balancer has no key
        refused = await http.get("/readyz?deep=1")
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        deep = await http.get("/readyz?deep=1", headers={"X-API-Key": KEY})
        assert deep.status_code == 200 and deep.json()["deep"]["label"]
