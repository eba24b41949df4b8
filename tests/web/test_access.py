"""API keys and per-client limits through a real gateway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from iras.config import Settings
from iras.infra.provision import Resources
from iras.model import Classifier
from iras.web.api_keys import key_subprotocol
from tests.support import image_bytes, wait_until
from tests.web.conftest import running_worker, serve_gateway, wait_ready

ALPHA_KEY, BETA_KEY = "alpha-secret-0123456789", "beta-secret-0123456789"
ALPHA = {"X-API-Key": ALPHA_KEY}
BETA = {"Authorization": f"Bearer {BETA_KEY}"}


def key_protocols(key: str) -> list[Subprotocol]:
    """What the page offers a WebSocket: `iras`, and the key as a subprotocol."""
    return [Subprotocol("iras"), Subprotocol(key_subprotocol(key))]


@pytest.fixture
async def keyed(
    gateway_settings: Settings, resources: Resources, classifier: Classifier
) -> AsyncIterator[str]:
    """A gateway that wants API keys, with a worker; its URL."""
    settings = gateway_settings.model_copy(update={"api_keys": (ALPHA_KEY, BETA_KEY)})
    async with serve_gateway(settings) as url, running_worker(settings, resources, classifier):
        async with httpx.AsyncClient(base_url=url) as http:
            await wait_ready(http)
        yield url


async def test_without_a_key_the_api_answers_401_and_the_page_still_loads(keyed: str) -> None:
    async with httpx.AsyncClient(base_url=keyed, timeout=30) as http:
        for method, path in [
            ("POST", "/upload"),
            ("POST", "/v1/classify"),
            ("GET", "/v1/jobs/some-job"),
            ("GET", "/v1/results/some-request"),
            ("GET", "/v1/scaler"),
        ]:
            answer = await http.request(method, path, headers={"X-API-Key": "wrong"})
            assert answer.status_code == 401, path
            assert answer.json()["error"] == "unauthorized"
            assert answer.headers["WWW-Authenticate"] == "Bearer"
        for path in ("/", "/healthz", "/readyz", "/metrics"):
            assert (await http.get(path)).status_code == 200, path


async def test_a_job_belongs_to_the_key_that_made_it(keyed: str) -> None:
    ws_base = keyed.replace("http://", "ws://", 1)
    async with httpx.AsyncClient(base_url=keyed, timeout=60) as http:
        files = [("files", ("mine.jpg", image_bytes(seed=5)))]
        job = (await http.post("/v1/classify?wait=true", files=files, headers=ALPHA)).json()
        job_path = f"/v1/jobs/{job['job_id']}"
        request_path = f"/v1/results/{job['requests'][0]['request_id']}"

        assert (await http.get(job_path, headers=ALPHA)).status_code == 200
        assert (await http.get(request_path, headers=ALPHA)).json()["label"]
        for path in (job_path, request_path):  # another key: as if it did not exist
            other = await http.get(path, headers=BETA)
            assert other.status_code == 404 and other.json()["error"] == "not_found"

    socket_url = f"{ws_base}{job_path}/ws"
    async with websockets.connect(socket_url, subprotocols=key_protocols(ALPHA_KEY)) as ws:
        assert ws.subprotocol == "iras"  # accepted with `iras`: the key is never echoed
        streamed = [json.loads(m) async for m in ws]
    assert [m["request_id"] for m in streamed] == [job["requests"][0]["request_id"]]
    async with websockets.connect(socket_url, additional_headers=ALPHA) as ws:  # or a header
        assert [json.loads(m)["request_id"] async for m in ws] == [streamed[0]["request_id"]]
    for protocols, code in [(key_protocols(BETA_KEY), 4404), ([Subprotocol("iras")], 4401)]:
        async with websockets.connect(socket_url, subprotocols=protocols) as ws:
            refusal = json.loads(await ws.recv())
            await ws.wait_closed()
        assert ws.close_code == code and refusal["error"] in ("not_found", "unauthorized")


async def test_a_key_in_the_url_is_no_key(keyed: str) -> None:
    """URLs land in load balancers' access logs: `?api_key=` is refused everywhere."""
    async with httpx.AsyncClient(base_url=keyed, timeout=30) as http:
        answer = await http.get(f"/v1/jobs/x?api_key={ALPHA_KEY}")
        assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
        assert (await http.get("/v1/jobs/x", headers=ALPHA)).status_code == 404  # the key is good
    ws_url = keyed.replace("http://", "ws://", 1)
    async with websockets.connect(f"{ws_url}/v1/jobs/x/ws?api_key={ALPHA_KEY}") as ws:
        refusal = json.loads(await ws.recv())
        await ws.wait_closed()
    assert ws.close_code == 4401 and refusal["error"] == "unauthorized"


async def test_an_address_that_guesses_keys_is_refused_even_the_right_one(
    gateway_settings: Settings, resources: Resources
) -> None:
    settings = gateway_settings.model_copy(
        update={"api_keys": (ALPHA_KEY,), "max_key_failures_per_min": 3}
    )
    async with serve_gateway(settings) as url, httpx.AsyncClient(base_url=url) as http:
        await wait_ready(http)
        assert (await http.get("/v1/jobs/x", headers=ALPHA)).status_code == 404
        for guess in range(3):
            wrong = await http.get("/v1/jobs/x", headers={"X-API-Key": f"guess-{guess}"})
            assert wrong.status_code == 401
        guessed = await http.get("/v1/jobs/x", headers={"X-API-Key": "guess-3"})
        right = await http.get("/v1/jobs/x", headers=ALPHA)  # not even checked now
        without = await http.get("/v1/jobs/x")  # no key is no guess: the usual 401
        async with websockets.connect(
            url.replace("http://", "ws://", 1) + "/v1/jobs/x/ws",
            subprotocols=key_protocols(ALPHA_KEY),
        ) as ws:
            refusal = json.loads(await ws.recv())
            await ws.wait_closed()

    for locked in (guessed, right):
        assert locked.status_code == 429 and locked.json()["error"] == "too_many_wrong_keys"
        assert 1 <= int(locked.headers["Retry-After"]) <= 20  # a try refills every 20 s
        assert "IRAS_MAX_KEY_FAILURES_PER_MIN" in locked.json()["detail"]
    assert without.status_code == 401
    assert ws.close_code == 4429 and refusal["error"] == "too_many_wrong_keys"


async def test_a_client_over_its_rate_gets_429_and_others_do_not(
    gateway_settings: Settings, resources: Resources
) -> None:
    settings = gateway_settings.model_copy(
        update={
            "api_keys": (ALPHA_KEY, BETA_KEY),
            "rate_limit_per_s": 0.2,
            "rate_limit_burst": 2,
        }
    )
    async with serve_gateway(settings) as url, httpx.AsyncClient(base_url=url) as http:
        await wait_ready(http)
        # /v1/scaler (404: no autoscaler here) costs one token a call, and no AWS call.
        statuses = [(await http.get("/v1/scaler", headers=ALPHA)).status_code for _ in range(3)]
        limited = await http.get("/v1/scaler", headers=ALPHA)
        other = await http.get("/v1/scaler", headers=BETA)

    assert statuses == [404, 404, 429]
    assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert other.status_code == 404  # beta has its own budget


async def test_uploads_in_progress_are_capped_per_client(
    gateway_settings: Settings, resources: Resources
) -> None:
    # No worker: an /upload waits for its result until the (short) wait timeout.
    settings = gateway_settings.model_copy(
        update={"max_uploads_per_client": 1, "wait_timeout_s": 3.0}
    )
    async with serve_gateway(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        await wait_ready(http)

        def upload() -> asyncio.Task[httpx.Response]:
            files = {"myfile": ("w.jpg", image_bytes(seed=1))}
            return asyncio.create_task(http.post("/upload", files=files))

        waiting = upload()
        await wait_until(lambda: _accepted_one(http), timeout_s=30)
        second = await upload()
        assert second.status_code == 429 and second.json()["error"] == "too_many_uploads"
        assert (await waiting).status_code == 504  # the first one ran its course
        third = await upload()  # its slot is free again

    assert third.status_code == 504


async def _accepted_one(http: httpx.AsyncClient) -> bool:
    """Whether the gateway has accepted the upload (it then waits for the result)."""
    return "iras_images_accepted_total 1.0" in (await http.get("/metrics")).text
