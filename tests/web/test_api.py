"""The HTTP API against a real gateway, a real worker and the embedded AWS, with each
implementation of the per-image calls."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from iras.messages import name_stem
from iras.model import Classifier, Prediction
from tests.support import image_bytes
from tests.web.conftest import Service

pytestmark = pytest.mark.both_aws_clients


def expected_label(classifier: Classifier, blob: bytes) -> str:
    (outcome,) = classifier.classify([blob])
    assert isinstance(outcome, Prediction)
    return outcome.label


async def test_upload_speaks_the_course_protocol(service: Service, classifier: Classifier) -> None:
    blob = image_bytes(seed=7)
    response = await service.http.post("/upload", files={"myfile": ("test_07.jpg", blob)})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == f"test_07:{expected_label(classifier, blob)}"
    # Answered, the job is forgotten: its client never learned its ids.
    assert "iras_jobs_in_memory 0.0" in (await service.http.get("/metrics")).text
    kept = await service.http.post("/v1/classify", files={"files": ("test_07.jpg", blob)})
    assert kept.status_code == 200  # accepted; the job is kept for lookups
    assert "iras_jobs_in_memory 1.0" in (await service.http.get("/metrics")).text


async def test_hundred_concurrent_uploads_all_answered_correctly(
    service: Service, classifier: Classifier
) -> None:
    blobs = {f"test_{i:02d}.png": image_bytes(seed=i, fmt="PNG") for i in range(100)}
    labels = dict(
        zip(
            blobs,
            [
                o.label
                for o in classifier.classify(list(blobs.values()))
                if isinstance(o, Prediction)
            ],
            strict=True,
        )
    )
    responses = await asyncio.gather(
        *(service.http.post("/upload", files={"myfile": (n, b)}) for n, b in blobs.items())
    )
    assert [r.status_code for r in responses] == [200] * 100
    assert sorted(r.text for r in responses) == sorted(
        f"{name_stem(name)}:{label}" for name, label in labels.items()
    )


async def test_classify_and_wait_returns_every_result(
    service: Service, classifier: Classifier
) -> None:
    files = [("files", (f"pic{i}.jpg", image_bytes(seed=20 + i))) for i in range(5)]
    response = await service.http.post("/v1/classify?wait=true", files=files)
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "done" and job["total"] == 5 and len(job["requests"]) == 5
    for (_, (name, blob)), entry in zip(files, job["requests"], strict=True):
        result = entry["result"]
        assert entry["name"] == name == result["name"]
        assert result["label"] == expected_label(classifier, blob)
        assert result["job_id"] == job["job_id"] and result["request_id"] == entry["request_id"]
        assert {"top", "model", "worker", "timings"} <= set(result)


async def test_classify_without_waiting_then_look_up(service: Service) -> None:
    files = [("files", (f"q{i}.jpg", image_bytes(seed=40 + i))) for i in range(3)]
    response = await service.http.post("/v1/classify", files=files)
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "pending" or job["done"] <= 3
    assert all("result" not in entry for entry in job["requests"])
    job_id = job["job_id"]

    async def job_done() -> dict:  # type: ignore[type-arg]
        while (state := (await service.http.get(f"/v1/jobs/{job_id}")).json())["status"] != "done":  # noqa: ASYNC110 - polled over HTTP
            await asyncio.sleep(0.1)
        return state

    state = await asyncio.wait_for(job_done(), 60)
    assert state["done"] == 3
    for entry in state["requests"]:
        single = await service.http.get(f"/v1/results/{entry['request_id']}")
        assert single.status_code == 200
        assert single.json() == entry["result"]


async def test_websocket_streams_a_jobs_results_including_earlier_ones(service: Service) -> None:
    files = [("files", (f"w{i}.jpg", image_bytes(seed=60 + i))) for i in range(4)]
    first = (await service.http.post("/v1/classify?wait=true", files=files[:1])).json()
    other = (await service.http.post("/v1/classify", files=files[1:])).json()
    # The first job is complete before the socket opens: it still gets its result, then closes.
    async with websockets.connect(f"{service.ws_url}/v1/jobs/{first['job_id']}/ws") as ws:
        messages = [json.loads(m) async for m in ws]
    assert [m["request_id"] for m in messages] == [first["requests"][0]["request_id"]]
    # The second job streams only its own three results.
    async with websockets.connect(f"{service.ws_url}/v1/jobs/{other['job_id']}/ws") as ws:
        streamed = [json.loads(m) async for m in ws]
    assert sorted(m["request_id"] for m in streamed) == sorted(
        r["request_id"] for r in other["requests"]
    )
    assert all(m["job_id"] == other["job_id"] and m["label"] for m in streamed)


async def test_websocket_for_an_unknown_job_is_refused(service: Service) -> None:
    async with websockets.connect(f"{service.ws_url}/v1/jobs/nope/ws") as ws:
        message = json.loads(await ws.recv())
        await ws.wait_closed()
    assert message["error"] == "not_found"
    assert ws.close_code == 4404


async def test_lookups_of_unknown_ids_are_json_404s(gateway_only: Service) -> None:
    for path in ("/v1/results/nope", "/v1/jobs/nope", "/no/such/path"):
        response = await gateway_only.http.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


async def test_results_outlive_the_gateway(
    service: Service,
    gateway_settings,
    resources,  # type: ignore[no-untyped-def]
) -> None:
    from tests.web.conftest import serve_gateway

    files = [("files", (f"r{i}.jpg", image_bytes(seed=80 + i))) for i in range(2)]
    job = (await service.http.post("/v1/classify?wait=true", files=files)).json()
    async with (
        serve_gateway(gateway_settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as other_gateway,
    ):
        # A different gateway (think: this one after a restart) finds them in the bucket.
        state = (await other_gateway.get(f"/v1/jobs/{job['job_id']}")).json()
        assert state["status"] == "done"
        assert [e["result"] for e in state["requests"]] == [e["result"] for e in job["requests"]]
        request_id = job["requests"][0]["request_id"]
        result = (await other_gateway.get(f"/v1/results/{request_id}")).json()
        assert result == job["requests"][0]["result"]


async def test_operations_endpoints(service: Service) -> None:
    assert (await service.http.get("/healthz")).json() == {"status": "ok"}
    ready = (await service.http.get("/readyz")).json()
    assert ready["status"] == "ready" and ready["gateway"]
    await service.http.post("/upload", files={"myfile": ("m.jpg", image_bytes())})
    metrics = (await service.http.get("/metrics")).text
    for name in (
        "iras_http_requests_total",
        "iras_http_request_duration_seconds_bucket",
        "iras_images_accepted_total",
        "iras_results_total",
        "iras_result_latency_seconds_bucket",
    ):
        assert name in metrics
    assert (await service.http.get("/docs")).status_code == 200
    assert "/v1/classify" in (await service.http.get("/openapi.json")).text
