"""The result cache: identical images are classified once, by a real gateway and worker on
the embedded AWS, whose calls are counted (`/_iras/calls`) to see what was queued."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.messages import input_key, result_key
from iras.web.cache_front import CacheFront
from iras.web.jobs import JobBook, RequestRef
from iras.web.result_cache import (
    HASH_ON_A_THREAD_BYTES,
    ModelIdentity,
    ResultCache,
    content_digest,
    content_digests,
    model_identity,
)
from tests.support import image_bytes
from tests.web.conftest import Service, serve_gateway, wait_ready

#: A course run's images: distinct bytes, course-style names.
COURSE = {f"test_{i:02d}.jpg": image_bytes(seed=300 + i) for i in range(12)}


@pytest.fixture
def gateway_settings(settings: Settings) -> Settings:
    """As the suite's gateway (a worker in-process, no autoscaler), with the cache on."""
    return settings.model_copy(
        update={"idle_exit_s": 0, "wait_timeout_s": 60, "autoscaler": False, "result_cache": True}
    )


def sends(endpoint: str) -> int:
    """SQS messages sent through the embedded AWS so far, by any caller (calls of
    SendMessage and SendMessageBatch: none is made without a message)."""
    with urllib.request.urlopen(f"{endpoint}/_iras/calls") as answer:
        counts: dict[str, int] = json.loads(answer.read())
    return counts.get("sqs:SendMessage", 0) + counts.get("sqs:SendMessageBatch", 0)


async def course_run(http: httpx.AsyncClient, images: dict[str, bytes]) -> list[str]:
    """Every image uploaded at once by the course protocol; the answers, in order."""
    answers = await asyncio.gather(
        *(http.post("/upload", files={"myfile": (n, b, "image/jpeg")}) for n, b in images.items())
    )
    assert [answer.status_code for answer in answers] == [200] * len(images)
    return [answer.text for answer in answers]


async def classified(http: httpx.AsyncClient, name: str, image: bytes) -> dict[str, Any]:
    """The result of one image by `POST /v1/classify?wait=true`."""
    answer = await http.post("/v1/classify?wait=true", files={"files": (name, image)})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["requests"][0]["result"]
    return result


async def test_a_course_run_sent_twice_is_answered_the_second_time_without_a_message(
    service: Service, settings: Settings, aws: AwsClients
) -> None:
    endpoint = str(settings.endpoint_url)
    first = await course_run(service.http, COURSE)
    before = sends(endpoint)
    second = await course_run(service.http, COURSE)
    assert second == first  # the same labels, under the same names
    assert sends(endpoint) == before  # nothing queued: no request, so no reply either

    # A cached answer is stored as a classified one: input, result, name object.
    name, image = "again_00.jpg", COURSE["test_00.jpg"]
    result = await classified(service.http, name, image)
    assert result["cached"] is True
    assert f"again_00:{result['label']}" == first[0].replace("test_00", "again_00")
    request_id = result["request_id"]
    assert await aws.objects.get(settings.input_bucket, input_key(request_id)) == image
    stored = json.loads(
        await aws.objects.get(settings.records_bucket, result_key(settings, request_id))
    )
    assert stored == result
    label = await aws.objects.get(settings.output_bucket, "again_00")
    assert label.decode() == result["label"]
    assert (await service.http.get(f"/v1/results/{request_id}")).json() == result
    assert sends(endpoint) == before


async def test_a_cached_answer_keeps_the_original_classification(service: Service) -> None:
    """The label, scores, model, worker and timings are the classification's own."""
    image = image_bytes(seed=401)
    original = await classified(service.http, "one.jpg", image)
    again = await classified(service.http, "two.png", image)
    assert "cached" not in original
    assert again["cached"] is True
    assert again["request_id"] != original["request_id"]
    assert again["job_id"] != original["job_id"]
    assert again["name"] == "two.png"
    for field in ("label", "top", "model", "model_version", "worker", "timings"):
        assert again[field] == original[field], field


async def test_concurrent_uploads_of_one_new_image_are_classified_once(service: Service) -> None:
    image = image_bytes(seed=402)
    results = await asyncio.gather(
        *(classified(service.http, f"same_{i}.jpg", image) for i in range(8))
    )
    fresh = [result for result in results if not result.get("cached")]
    assert len(fresh) == 1  # one classification; the other seven followed its flight
    assert {result["label"] for result in results} == {fresh[0]["label"]}
    assert {result["timings"]["batch_id"] for result in results} == {
        fresh[0]["timings"]["batch_id"]
    }
    metrics = (await service.http.get("/metrics")).text
    answered = {
        source: float(count)
        for source, count in re.findall(
            r'^iras_cached_answers_total\{source="(\w+)"\} (\S+)$', metrics, re.MULTILINE
        )
    }
    # All seven arrive while the one is classified (its batch alone waits 50 ms), so they
    # follow its flight; one slowed past that on a loaded machine finds the entry instead.
    assert answered.get("flight", 0) >= 1
    assert answered.get("flight", 0) + answered.get("cache", 0) == 7


async def test_the_deep_readiness_check_always_asks_the_fleet(
    service: Service, settings: Settings
) -> None:
    """Its golden image is the same bytes every time, and it is there to see a worker
    answer: the cache never answers it."""
    endpoint = str(settings.endpoint_url)
    for _ in range(2):
        before = sends(endpoint)
        answer = await service.http.get("/readyz?deep=1")
        assert answer.status_code == 200, answer.text
        assert answer.json()["deep"]["worker"]
        assert sends(endpoint) > before


async def test_another_gateway_answers_from_the_bucket(
    service: Service, gateway_settings: Settings, settings: Settings, aws: AwsClients
) -> None:
    """Entries outlive a gateway's memory: a second gateway (or this one, restarted)
    answers an image the first one classified, queueing nothing."""
    image = image_bytes(seed=403)
    original = await classified(service.http, "first.jpg", image)
    entry = f"{model_identity(gateway_settings).folder}{content_digest(image)}.json"
    async with asyncio.timeout(10):  # written beside the answer, not before it
        while not await aws.objects.list_keys(settings.records_bucket, entry):  # noqa: ASYNC110 - polled in S3
            await asyncio.sleep(0.02)
    endpoint = str(settings.endpoint_url)
    before = sends(endpoint)
    async with (
        serve_gateway(gateway_settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        await wait_ready(http)
        again = await classified(http, "second.jpg", image)
    assert again["cached"] is True
    assert again["label"] == original["label"]
    assert sends(endpoint) == before


async def test_a_gateway_without_the_models_files_runs_without_the_cache(
    gateway_settings: Settings, resources: Resources, tmp_path: Path
) -> None:
    """Your own model may live on the workers' disks only: the gateway cannot name its
    entries then, so it serves without the cache rather than not at all."""
    elsewhere = gateway_settings.model_copy(update={"model_name": str(tmp_path / "absent")})
    async with (
        serve_gateway(elsewhere) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        await wait_ready(http)
        answer = await http.post("/v1/classify", files={"files": ("a.jpg", image_bytes())})
        assert answer.status_code == 200, answer.text
        metrics = (await http.get("/metrics")).text
        assert "iras_images_accepted_total 1.0" in metrics


async def test_a_new_model_never_answers_with_an_old_label(
    aws: AwsClients, settings: Settings, resources: Resources
) -> None:
    bucket = settings.records_bucket
    digest = content_digest(b"an image")
    result = {"request_id": "r1", "job_id": "j1", "name": "a.jpg", "label": "cat", "top": []}
    result |= {"model": "m", "model_version": "1", "worker": "w", "timings": {}}
    int8 = ResultCache(aws.objects, bucket, ModelIdentity("m", "1", "int8"), 10)
    assert int8.fly(digest) is None
    int8.land(digest, result)
    await int8.store(digest, result)

    again = ResultCache(aws.objects, bucket, ModelIdentity("m", "1", "int8"), 10)
    assert (await again.find(digest)) == result  # from the bucket
    for other in (ModelIdentity("m", "1", "fp32"), ModelIdentity("m", "2", "int8")):
        assert await ResultCache(aws.objects, bucket, other, 10).find(digest) is None
    # A result another model made is not kept, whatever the cache's identity.
    stranger = ResultCache(aws.objects, bucket, ModelIdentity("n", "1", "int8"), 10)
    stranger.land(digest, result)
    await stranger.store(digest, result)
    assert await stranger.find(digest) is None


async def test_large_images_are_keyed_as_small_ones() -> None:
    small, large = b"x" * 100, bytes(range(256)) * (HASH_ON_A_THREAD_BYTES // 256 + 1)
    assert await content_digests([small, large]) == [
        content_digest(small),
        hashlib.sha256(large).hexdigest(),
    ]


async def test_memory_is_bounded_and_errors_are_not_kept(
    aws: AwsClients, settings: Settings, resources: Resources
) -> None:
    identity = ModelIdentity("m", "1", "int8")
    cache = ResultCache(aws.objects, settings.records_bucket, identity, max_entries=2)
    base = {"request_id": "r", "job_id": "j", "name": "n", "model": "m", "model_version": "1"}
    for i in range(3):
        cache.land(f"d{i}", {**base, "label": f"l{i}", "top": [], "timings": {}})
    assert len(cache) == 2 and cache.remembered(["d0", "d1", "d2"]) == 2
    assert await cache.find("d0") is None  # forgotten first, and never stored in the bucket
    assert (await cache.find("d2") or {})["label"] == "l2"
    cache.land("e", {**base, "error": "cannot decode", "timings": {}})
    assert await cache.find("e") is None


async def test_a_follower_whose_flight_fails_queues_its_own_request(
    aws: AwsClients, settings: Settings, resources: Resources
) -> None:
    """A flight that ends without a result (the leader's upload failed, or its result
    never came) leaves no follower unanswered: each queues its request."""
    identity = ModelIdentity("m", "1", "int8")
    cache = ResultCache(aws.objects, settings.records_bucket, identity, max_entries=10)
    book = JobBook(max_jobs=10, ttl_s=60)
    queued: list[tuple[str, list[RequestRef]]] = []

    async def send(job_id: str, refs: list[RequestRef]) -> None:
        queued.append((job_id, refs))

    front = CacheFront(cache, settings, aws.objects, book, send)
    leader, follower = RequestRef("r-lead", "a.jpg"), RequestRef("r-follow", "b.jpg")
    leading = front.plan([leader], ["d"], [None])
    following = front.plan([follower], ["d"], [None])
    assert [ref for ref, _ in leading.leading] == [leader]
    assert [ref for ref, _, _ in following.following] == [follower]
    job = book.add_job("j-follow", [follower], None, book.reserve(None))
    front.take_off(leading)
    front.follow(job, following)
    front.abort(leading)
    async with asyncio.timeout(10):
        while not queued:  # noqa: ASYNC110 - the follower's task runs on this loop
            await asyncio.sleep(0.01)
    assert queued == [("j-follow", [follower])]
    await front.close()
