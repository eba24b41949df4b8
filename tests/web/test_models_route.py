"""`GET /v1/models`: a worker serving a team's model records it, and the gateway lists it.

The worker is the real `iras-worker` process on a model folder (`--model DIR`) and the
embedded AWS; its results carry the model's name and version; the gateway's answer is
checked against its own OpenAPI document.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.messages import MODELS_PREFIX, model_key
from iras.web.fleet_models import FleetModels, listing, valid_record
from iras.web.lookup import Meter, open_lookups
from tests.model.tiny_models import LABELS, card_for, model_folder
from tests.support import collect_results, image_bytes, submit
from tests.web.conftest import serve_gateway, wait_ready
from tests.web.test_openapi import assert_documented, served_document

TINY = {
    "name": "tiny",
    "version": "1",
    "labels": 5,
    "output": "logits",
    "input": {"layout": "NCHW", "dtype": "float32", "size": 32},
}
BUILT_IN = {
    "name": "efficientnet_lite0",
    "version": "imagenet-1k",
    "labels": 1000,
    "output": "probabilities",
    "input": {"layout": "NHWC", "dtype": "uint8", "size": 224},
    "sources": ["gateway"],
}


async def run_burst_worker(settings: Settings, model: Path) -> int:
    process = subprocess.Popen(  # noqa: ASYNC220 - started once; its wait runs in a thread
        [sys.executable, "-m", "iras.worker", "--burst", "--model", str(model)],
        env={
            **os.environ,
            "IRAS_ENDPOINT_URL": str(settings.endpoint_url),
            "IRAS_RECEIVE_WAIT_S": "1",
            "IRAS_INFERENCE_THREADS": "1",
            "IRAS_IDLE_EXIT_S": "0",
        },
    )
    try:
        return await asyncio.wait_for(asyncio.to_thread(process.wait), 60)
    finally:
        process.kill()


async def test_a_worker_on_a_custom_model_answers_with_it_and_the_gateway_lists_it(
    gateway_settings: Settings, aws: AwsClients, resources: Resources, tmp_path: Path
) -> None:
    folder = model_folder(tmp_path / "tiny")
    replies = (await aws.sqs.create_queue(QueueName=f"iras-replies-{uuid.uuid4().hex[:8]}"))[
        "QueueUrl"
    ]
    images = {f"m{i}.jpg": image_bytes(seed=30 + i) for i in range(3)}
    requests = await submit(aws, gateway_settings, resources, images, replies)

    assert await run_burst_worker(gateway_settings, folder) == 0
    results = await collect_results(aws, replies, len(images), timeout_s=10)
    assert {r.request_id for r in results} == {r.request_id for r in requests}
    for result in results:
        assert (result.model, result.model_version) == ("tiny", "1")
        assert result.label in LABELS and [t["label"] for t in result.top] != []
        assert len(result.top) == min(gateway_settings.top_k, len(LABELS))

    async with (
        serve_gateway(gateway_settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        await wait_ready(http)
        document = await served_document(http)
        answer = await http.get("/v1/models")
        body = assert_documented(document, answer, "get", "/v1/models")
        stored = await http.get(f"/v1/results/{requests[0].request_id}")
        result = assert_documented(document, stored, "get", "/v1/results/{request_id}")
    assert result["model_version"] == "1"
    (built_in, tiny) = body["models"]
    assert built_in == BUILT_IN  # the gateway's IRAS_MODEL, known without files
    seen_at = tiny.pop("seen_at")
    assert tiny == {**TINY, "sources": ["workers"]} and seen_at > 0


async def test_the_listing_is_read_once_per_period_and_charged_when_read(
    settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    bucket = settings.records_bucket
    record = {**TINY, "seen_at": 1.0}
    await aws.objects.put(bucket, model_key("tiny", "1"), json.dumps(record).encode())
    await aws.objects.put(bucket, f"{MODELS_PREFIX}junk/1.json", b'{"name": "../x"}')
    now = [100.0]
    fleet = FleetModels(ttl_s=10, clock=lambda: now[0])
    async with open_lookups(settings, aws) as lookups:
        first = Meter()
        assert await fleet.records(lookups, first) == [record]  # the junk record left out
        assert first.calls == 3  # the listing and two GETs

        await aws.objects.put(bucket, model_key("tiny", "2"), json.dumps(record).encode())
        now[0] += 9.9
        cached = Meter()
        assert await fleet.records(lookups, cached) == [record] and cached.calls == 0

        now[0] += 0.2
        again = Meter()
        assert len(await fleet.records(lookups, again)) == 2 and again.calls == 4


def test_records_are_checked_before_they_are_shown() -> None:
    good = {**TINY, "seen_at": 5}
    assert valid_record(good) == {**TINY, "seen_at": 5.0}
    for bad in (
        {**good, "labels": True},
        {**good, "version": "a/b"},
        {**good, "input": {"layout": "HWC", "dtype": "uint8", "size": 3}},
        {**good, "output": None},
        {k: v for k, v in good.items() if k != "seen_at"},
        ["not", "a", "record"],
    ):
        assert valid_record(bad) is None, bad


def test_the_listing_merges_the_gateways_model_with_the_workers_records(
    settings: Settings, tmp_path: Path
) -> None:
    from iras.web.fleet_models import gateway_model

    configured = gateway_model(settings)
    assert configured is not None
    recorded = {**BUILT_IN, "seen_at": 3.0}
    del recorded["sources"]
    body = listing([recorded, {**TINY, "seen_at": 2.0}], configured)
    assert [(m["name"], m["sources"]) for m in body["models"]] == [
        ("efficientnet_lite0", ["workers", "gateway"]),
        ("tiny", ["workers"]),
    ]
    folder = model_folder(tmp_path / "mine", card_for())
    assert gateway_model(settings.model_copy(update={"model_name": str(folder)})) is None
