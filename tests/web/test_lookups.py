"""Lookups of jobs the gateway has forgotten, against a real gateway and the embedded AWS:
what they cost S3, who pays for it, and that they leave uploads alone.

The jobs are made as a gateway that has since forgotten them (or another gateway) left
them: a manifest and per-request results in the output bucket. S3 calls are counted by
the embedded AWS itself.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.messages import Result, encode_result, job_key, result_key
from iras.model import Classifier
from iras.web.api_keys import key_digest
from tests.support import image_bytes, wait_until
from tests.tcp_proxy import tcp_proxy
from tests.web.conftest import running_worker, serve_gateway, wait_ready
from tests.web.test_aws_calls import calls

ALPHA_KEY, BETA_KEY = "alpha-key-0123456789", "beta-key-0123456789"
ALPHA, BETA = {"X-API-Key": ALPHA_KEY}, {"X-API-Key": BETA_KEY}


async def store_job(
    aws: AwsClients,
    settings: Settings,
    requests: int,
    done: int,
    owner: str | None = None,
) -> tuple[str, list[str]]:
    """A job as the output bucket holds it once its gateway forgot it: its manifest, and
    the results of its first `done` requests. Its id and request ids."""
    job_id = uuid.uuid4().hex
    ids = [uuid.uuid4().hex for _ in range(requests)]
    manifest = {
        "job_id": job_id,
        "owner": owner,
        "requests": [{"request_id": rid, "name": f"img_{i}.jpg"} for i, rid in enumerate(ids)],
    }
    await aws.objects.put(settings.output_bucket, job_key(job_id), json.dumps(manifest).encode())
    await store_results(aws, settings, job_id, ids[:done])
    return job_id, ids


async def store_results(
    aws: AwsClients, settings: Settings, job_id: str, request_ids: list[str]
) -> None:
    slots = asyncio.Semaphore(16)

    async def put(request_id: str) -> None:
        result = Result(request_id, job_id, "img.jpg", "model", "worker", label="goldfish")
        async with slots:
            await aws.objects.put(
                settings.output_bucket,
                result_key(settings, request_id),
                encode_result(result).encode(),
            )

    await asyncio.gather(*(put(request_id) for request_id in request_ids))


def gets(endpoint: str, before: int) -> int:
    return calls(endpoint)["s3:GetObject"] - before


async def test_polling_a_forgotten_job_costs_s3_only_until_it_is_complete(
    gateway_settings: Settings, resources: Resources, aws: AwsClients
) -> None:
    settings = gateway_settings.model_copy(update={"rate_limit_per_s": 0})  # costs, not limits
    endpoint = settings.endpoint_url
    assert endpoint is not None
    job_id, ids = await store_job(aws, settings, requests=500, done=250)
    async with serve_gateway(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        await wait_ready(http)
        path = f"/v1/jobs/{job_id}"

        before = calls(endpoint)["s3:GetObject"]
        first = (await http.get(path)).json()
        assert (first["status"], first["done"]) == ("pending", 250)
        assert gets(endpoint, before) == 501  # the manifest, and one GET per request

        # Polled at once and often, a pending job is refreshed at most once a second.
        before, started = calls(endpoint)["s3:GetObject"], time.monotonic()
        for _ in range(20):
            assert (await http.get(path)).json()["done"] == 250
        polled_s = time.monotonic() - started
        assert gets(endpoint, before) <= 250 * (int(polled_s) + 1), polled_s

        await store_results(aws, settings, job_id, ids[250:])

        async def complete() -> bool:
            return bool((await http.get(path)).json()["status"] == "done")

        await wait_until(complete, timeout_s=30, period_s=0.2)
        before = calls(endpoint)["s3:GetObject"]
        for _ in range(50):
            answer = (await http.get(path)).json()
            assert answer["done"] == 500
        assert gets(endpoint, before) == 0  # complete: never fetched again

        # Twenty callers asking at once for a job not fetched yet share one fetch.
        other_id, _ = await store_job(aws, settings, requests=100, done=100)
        before = calls(endpoint)["s3:GetObject"]
        answers = await asyncio.gather(*(http.get(f"/v1/jobs/{other_id}") for _ in range(20)))
        assert {answer.json()["done"] for answer in answers} == {100}
        assert gets(endpoint, before) == 101


async def test_a_client_hammering_lookups_is_refused_while_anothers_upload_goes_through(
    gateway_settings: Settings, resources: Resources, aws: AwsClients, classifier: Classifier
) -> None:
    # The rate limits as deployed (100/s, bursts of 200): alpha polls its own forgotten
    # 500-image job, none of it classified yet, as fast as twenty connections go.
    settings = gateway_settings.model_copy(update={"api_keys": (ALPHA_KEY, BETA_KEY)})
    endpoint = settings.endpoint_url
    assert endpoint is not None
    job_id, _ = await store_job(aws, settings, requests=500, done=0, owner=key_digest(ALPHA_KEY))
    async with (
        serve_gateway(settings) as url,
        running_worker(settings, resources, classifier),
        httpx.AsyncClient(
            base_url=url, timeout=60, limits=httpx.Limits(max_connections=50)
        ) as http,
    ):
        await wait_ready(http)
        before = calls(endpoint)["s3:GetObject"]
        assert (await http.get(f"/v1/jobs/{job_id}", headers=BETA)).status_code == 404
        assert gets(endpoint, before) == 1  # another key's job: its manifest, no results
        before = calls(endpoint)["s3:GetObject"]
        hammering_until = time.monotonic() + 4.0
        answers: list[httpx.Response] = []

        async def hammer() -> None:
            while time.monotonic() < hammering_until:
                answers.append(await http.get(f"/v1/jobs/{job_id}", headers=ALPHA))

        hammers = [asyncio.create_task(hammer()) for _ in range(20)]
        await asyncio.sleep(1.0)
        started = time.monotonic()
        files = {"myfile": ("beta.jpg", image_bytes(seed=3))}
        upload = await http.post("/upload", files=files, headers=BETA)
        upload_s = time.monotonic() - started
        await asyncio.gather(*hammers)
        made = gets(endpoint, before)

    assert upload.status_code == 200, upload.text
    assert upload.text.startswith("beta:")
    assert upload_s < settings.aws_deadline_s
    statuses = {answer.status_code for answer in answers}
    assert statuses == {200, 429}, statuses
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert refused.json()["error"] == "rate_limited" and int(refused.headers["Retry-After"]) >= 1
    # Each poll's 501 GETs charged to alpha: its 200-token burst and 100/s over 4 s pay
    # for two fetches of the job at most (and the worker's one GET of beta's image).
    assert made <= 2 * 501 + 1, made
    print(f"\nhammering: {len(answers)} polls, {made} GETs; beta's upload took {upload_s:.2f} s")


@pytest.mark.both_aws_clients
async def test_lookups_have_connections_of_their_own(
    gateway_settings: Settings, resources: Resources, aws: AwsClients, classifier: Classifier
) -> None:
    # No rate limit: nothing but the lookups' own pool stands between a flood of lookups
    # of ten forgotten 500-image jobs and the connections uploads need.
    settings = gateway_settings.model_copy(update={"rate_limit_per_s": 0})
    jobs = [(await store_job(aws, settings, requests=500, done=0))[0] for _ in range(10)]
    async with (
        serve_gateway(settings) as url,
        running_worker(settings, resources, classifier),
        httpx.AsyncClient(
            base_url=url, timeout=60, limits=httpx.Limits(max_connections=50)
        ) as http,
    ):
        await wait_ready(http)
        flooding = True

        async def flood(job_id: str) -> None:
            while flooding:
                assert (await http.get(f"/v1/jobs/{job_id}")).status_code in (200, 503)

        floods = [asyncio.create_task(flood(jobs[i % len(jobs)])) for i in range(30)]
        await asyncio.sleep(1.0)
        took_s = []
        try:
            for i in range(5):
                started = time.monotonic()
                files = {"myfile": (f"u{i}.jpg", image_bytes(seed=i))}
                upload = await http.post("/upload", files=files)
                took_s.append(time.monotonic() - started)
                assert upload.status_code == 200, upload.text
                assert took_s[-1] < settings.aws_deadline_s
        finally:
            flooding = False
            await asyncio.gather(*floods)
    print(f"\nuploads under a flood of lookups took {', '.join(f'{t:.2f}' for t in took_s)} s")


async def test_a_lookup_s3_cannot_answer_is_a_503_with_retry_after(
    gateway_settings: Settings, resources: Resources, aws: AwsClients
) -> None:
    job_id, _ = await store_job(aws, gateway_settings, requests=10, done=10)
    assert gateway_settings.endpoint_url is not None
    async with tcp_proxy(gateway_settings.endpoint_url) as proxy:
        proxied = gateway_settings.model_copy(update={"endpoint_url": proxy.url})
        async with (
            serve_gateway(proxied) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            await wait_ready(http)
            await proxy.cut()
            started = time.monotonic()
            answers = [await http.get(path) for path in (f"/v1/jobs/{job_id}", "/v1/results/x")]
            answered_s = time.monotonic() - started
            await proxy.restore()
            found = await http.get(f"/v1/jobs/{job_id}")

    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "aws_unavailable"
        assert int(answer.headers["Retry-After"]) >= 1
    assert answered_s < 2 * gateway_settings.aws_deadline_s
    assert found.status_code == 200 and found.json()["status"] == "done"
