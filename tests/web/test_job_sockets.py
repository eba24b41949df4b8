"""WebSockets that end, through a real gateway and the embedded AWS: when the client goes,
after their deadline, and when a client or the gateway holds too many.

The jobs here never complete (no worker, or a manifest whose results never come), which
is exactly the case where a socket used to live forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.local_aws import CALLS_PATH
from iras.messages import job_key
from iras.web.routes.jobs import STORAGE_POLL_MAX_S, STORAGE_POLL_S, next_poll_s
from tests.support import image_bytes, wait_until
from tests.tcp_proxy import tcp_proxy
from tests.web.conftest import serve_gateway, wait_ready

ALPHA = {"X-API-Key": "alpha-secret-0123456789"}
BETA = {"X-API-Key": "beta-secret-0123456789"}


def s3_gets(endpoint: str) -> int:
    with urllib.request.urlopen(f"{endpoint}{CALLS_PATH}", timeout=10) as answer:
        return Counter(json.load(answer))["s3:GetObject"]


async def stored_job(aws: AwsClients, settings: Settings, requests: int = 2) -> str:
    """A job only the output bucket knows (as after a restart), whose results never come."""
    job_id = uuid.uuid4().hex
    manifest = {
        "job_id": job_id,
        "owner": None,
        "requests": [
            {"request_id": uuid.uuid4().hex, "name": f"s{i}.jpg"} for i in range(requests)
        ],
    }
    await aws.objects.put(settings.output_bucket, job_key(job_id), json.dumps(manifest).encode())
    return job_id


async def open_sockets(http: httpx.AsyncClient) -> float:
    found = re.search(
        r"^iras_websocket_connections (\S+)$", (await http.get("/metrics")).text, re.M
    )
    return float(found.group(1)) if found else 0.0


@contextlib.asynccontextmanager
async def gateway(settings: Settings) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """A gateway with no worker: its WebSocket URL and an HTTP client."""
    async with serve_gateway(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        await wait_ready(http)
        yield url.replace("http://", "ws://", 1), http


async def test_a_stored_jobs_socket_stops_polling_s3_when_its_client_goes(
    gateway_settings: Settings, resources: Resources, aws: AwsClients
) -> None:
    endpoint = gateway_settings.endpoint_url
    assert endpoint is not None
    job_id = await stored_job(aws, gateway_settings)
    async with gateway(gateway_settings) as (ws_url, http):
        polled_from = s3_gets(endpoint)
        async with websockets.connect(f"{ws_url}/v1/jobs/{job_id}/ws"):
            # Two rounds of polls (two results each): the socket follows the bucket.
            await wait_until(lambda: _gets_at_least(endpoint, polled_from + 4), timeout_s=20)
        # The client has gone: the gateway notices and the stream ends ...
        await wait_until(lambda: _sockets_are(http, 0), timeout_s=10)
        gone = s3_gets(endpoint)
        # ... and then makes no S3 call for it, over several poll periods.
        waited = time.monotonic()
        while time.monotonic() - waited < 3 * STORAGE_POLL_S:
            await asyncio.sleep(STORAGE_POLL_S / 2)
            assert s3_gets(endpoint) == gone


def test_a_stalled_stored_job_is_looked_at_less_and_less_often() -> None:
    waits, wait_s = [], STORAGE_POLL_S / 2
    for got_results in (True, False, False, False, False, False, True, False):
        wait_s = next_poll_s(wait_s, got_results=got_results)
        waits.append(wait_s)
    assert waits == [1, 2, 4, 8, 8, 8, 1, 2]
    assert STORAGE_POLL_MAX_S == 8


async def test_a_stalled_stored_jobs_socket_costs_s3_less_over_time(
    gateway_settings: Settings, resources: Resources, aws: AwsClients
) -> None:
    """A job whose results never come (its worker is down): looked at after 1, 3 and 7 s,
    two GETs each, not every second (which was 14 GETs in these 7 s)."""
    endpoint = gateway_settings.endpoint_url
    assert endpoint is not None
    job_id = await stored_job(aws, gateway_settings)
    async with gateway(gateway_settings) as (ws_url, _):
        before = s3_gets(endpoint)
        async with websockets.connect(f"{ws_url}/v1/jobs/{job_id}/ws"):
            await wait_until(lambda: _gets_at_least(endpoint, before + 3), timeout_s=10)
            opened = time.monotonic()  # the first lookup made: manifest and two results
            await asyncio.sleep(7.5)  # the quantity measured is what 7 s of polling costs
            polls = s3_gets(endpoint) - before - 3
        elapsed = time.monotonic() - opened
    assert elapsed < 10, "the machine stalled: the count says nothing"
    assert 2 <= polls <= 6, f"{polls} GETs in {elapsed:.1f} s of a stalled job"


async def test_a_stored_jobs_socket_says_why_when_the_bucket_goes_away(
    gateway_settings: Settings, resources: Resources, aws: AwsClients
) -> None:
    """S3 unreachable mid-stream: a last message `aws_unavailable` and close 1013 (try
    again later), not a socket torn down with an error the client cannot read."""
    assert gateway_settings.endpoint_url is not None
    job_id = await stored_job(aws, gateway_settings)
    async with tcp_proxy(gateway_settings.endpoint_url) as proxy:
        settings = gateway_settings.model_copy(
            update={"endpoint_url": proxy.url, "aws_deadline_s": 2.0}
        )
        async with gateway(settings) as (ws_url, http):
            async with (
                asyncio.timeout(30),
                websockets.connect(f"{ws_url}/v1/jobs/{job_id}/ws") as ws,
            ):
                await proxy.cut()
                messages = await _until_closed(ws)
            await proxy.restore()
            await wait_until(lambda: _sockets_are(http, 0), timeout_s=10)
    assert ws.close_code == 1013
    (final,) = messages
    assert final["error"] == "aws_unavailable" and "retry" in final["detail"]


@pytest.mark.parametrize("where", ["stored", "live"])
async def test_a_socket_for_a_job_that_never_completes_ends_at_its_deadline(
    where: str, gateway_settings: Settings, resources: Resources, aws: AwsClients
) -> None:
    settings = gateway_settings.model_copy(update={"websocket_timeout_s": 1.0})
    async with gateway(settings) as (ws_url, http):
        if where == "stored":
            job_id = await stored_job(aws, settings)
        else:  # in the gateway's memory, its request queued for a worker that never comes
            files = [("files", ("late.jpg", image_bytes(seed=7)))]
            job_id = (await http.post("/v1/classify", files=files)).json()["job_id"]
        started = time.monotonic()
        async with asyncio.timeout(20), websockets.connect(f"{ws_url}/v1/jobs/{job_id}/ws") as ws:
            messages = await _until_closed(ws)
        assert time.monotonic() - started >= 1.0
        assert ws.close_code == 4408
        (final,) = messages  # no result ever came: the one message says why it ended
        assert final["error"] == "timeout" and "IRAS_WEBSOCKET_TIMEOUT_S" in final["detail"]
        await wait_until(lambda: _sockets_are(http, 0), timeout_s=10)


async def test_sockets_beyond_a_clients_share_or_the_gateways_total_are_refused(
    gateway_settings: Settings, resources: Resources, aws: AwsClients
) -> None:
    settings = gateway_settings.model_copy(
        update={
            # Two clients from one address.
            "api_keys": ("alpha-secret-0123456789", "beta-secret-0123456789"),
            "max_websockets_per_client": 2,
            "max_websockets": 3,
        }
    )
    job_id = await stored_job(aws, settings)
    async with gateway(settings) as (ws_url, http):
        path = f"{ws_url}/v1/jobs/{job_id}/ws"
        async with (
            websockets.connect(path, additional_headers=ALPHA),
            websockets.connect(path, additional_headers=ALPHA) as alpha_second,
        ):
            await wait_until(lambda: _sockets_are(http, 2))
            assert await _refusal(path, ALPHA) == (4429, "too_many_websockets")
            async with websockets.connect(path, additional_headers=BETA):  # another client: in
                await wait_until(lambda: _sockets_are(http, 3))
                assert await _refusal(path, BETA) == (4503, "gateway_busy")  # the total
                await alpha_second.close()
                await wait_until(lambda: _sockets_are(http, 2))
                async with websockets.connect(path, additional_headers=BETA):  # room again
                    await wait_until(lambda: _sockets_are(http, 3))


async def _refusal(path: str, headers: dict[str, str]) -> tuple[int | None, str]:
    """The close code and error of a socket the gateway refuses; fails if it stays open."""
    async with asyncio.timeout(10), websockets.connect(path, additional_headers=headers) as ws:
        message = json.loads(await ws.recv())
        await ws.wait_closed()
    assert "IRAS_MAX_WEBSOCKETS" in message["detail"]
    return ws.close_code, message["error"]


async def _until_closed(ws: websockets.ClientConnection) -> list[dict[str, str]]:
    """Every message until the gateway closes, whatever its close code."""
    messages = []
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            messages.append(json.loads(await ws.recv()))
    return messages


async def _gets_at_least(endpoint: str, count: int) -> bool:
    return s3_gets(endpoint) >= count


async def _sockets_are(http: httpx.AsyncClient, count: int) -> bool:
    return await open_sockets(http) == count
