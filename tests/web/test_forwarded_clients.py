"""Behind a load balancer, each user is a client of its own: IRAS_FORWARDED_ALLOW_IPS.

The gateway runs as production runs it (`iras gateway`, and `iras serve`), and clients
connect from loopback addresses: 127.0.0.2 stands for a load balancer that is not on
the gateway's machine. Per-client limits are what shows who the gateway thinks is
calling: with a burst of 2 and a rate that refills nothing during the test, a client's
third API call is refused 429, and another client's first is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from iras.bench.serve_process import free_port
from iras.config import Settings
from iras.infra.provision import Resources
from tests.web.conftest import ServedProcess

#: Two API calls at once, then one every 1,000 s: the third call of a client is a 429.
LIMITS = {"IRAS_RATE_LIMIT_PER_S": "0.001", "IRAS_RATE_LIMIT_BURST": "2"}


@contextlib.asynccontextmanager
async def gateway_process(
    settings: Settings, log_path: Path, env: dict[str, str]
) -> AsyncIterator[str]:
    """`iras gateway` against the test's AWS with `env` set, ready; its URL."""
    assert settings.endpoint_url is not None
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.endswith("ENDPOINT_URL")}
    base |= {"IRAS_GATEWAY_ID": "forwarded-test", "IRAS_AUTOSCALER": "false", **env}
    command = [sys.executable, "-m", "iras", "gateway", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--endpoint-url", settings.endpoint_url]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
            command, env=base, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http, asyncio.timeout(60):
            while True:
                assert process.poll() is None, log_path.read_text()
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), 30)
        except TimeoutError:
            process.kill()


async def calls_from(url: str, peer: str, forwarded_for: str, count: int = 3) -> list[int]:
    """The statuses of `count` API calls (GET /v1/scaler: 404 with the autoscaler off,
    once admitted) sent from address `peer`, each saying it is for `forwarded_for`."""
    transport = httpx.AsyncHTTPTransport(local_address=peer)
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=30) as http:
        return [
            (await http.get("/v1/scaler", headers={"X-Forwarded-For": forwarded_for})).status_code
            for _ in range(count)
        ]


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("127.0.0.1,::1", "127.0.0.1,::1"),
        (" 10.0.0.0/16 , 10.1.0.5 ", "10.0.0.0/16,10.1.0.5"),
        ("*", "*"),
        ("10.0.0.1,*", "*"),  # uvicorn trusts everyone only when told exactly '*'
    ],
)
def test_trusted_peers_are_ips_or_networks(value: str, kept: str) -> None:
    assert Settings(forwarded_allow_ips=value).forwarded_allow_ips == kept


@pytest.mark.parametrize("value", ["", " , ", "alb.internal", "10.0.0.0/33"])
def test_anything_else_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValidationError, match="forwarded_allow_ips"):
        Settings(forwarded_allow_ips=value)


ADMITTED_TWICE = [404, 404, 429]  # the burst, then the rate limit
REFUSED = [429, 429, 429]


@pytest.mark.parametrize(
    ("allowed", "peer", "per_forwarded_client"),
    [
        # An ALB's addresses trusted (here the loopback network stands for the VPC's CIDR):
        # each user behind it has limits of its own.
        pytest.param("127.0.0.0/8", "127.0.0.2", True, id="balancer-trusted"),
        # The default trusts only a proxy on the gateway's own machine: a peer elsewhere
        # that sends X-Forwarded-For is one client, whatever it claims.
        pytest.param(None, "127.0.0.2", False, id="default-ignores-others"),
        # Trusting some other address only: even a local peer's claim is ignored.
        pytest.param("10.255.0.1", "127.0.0.1", False, id="untrusted-local-peer"),
    ],
)
async def test_per_client_limits_follow_the_forwarded_client_only_from_trusted_peers(
    settings: Settings,
    resources: Resources,
    tmp_path: Path,
    allowed: str | None,
    peer: str,
    per_forwarded_client: bool,
) -> None:
    env = dict(LIMITS)
    if allowed is not None:
        env["IRAS_FORWARDED_ALLOW_IPS"] = allowed
    async with gateway_process(settings, tmp_path / "gateway.log", env) as url:
        first = await calls_from(url, peer, "203.0.113.10")
        second = await calls_from(url, peer, "203.0.113.20")
    assert first == ADMITTED_TWICE
    assert second == (ADMITTED_TWICE if per_forwarded_client else REFUSED)


@pytest.mark.serve_env(IRAS_FORWARDED_ALLOW_IPS="127.0.0.0/8", IRAS_AUTOSCALER="false", **LIMITS)
async def test_iras_serve_trusts_the_configured_balancer_too(served: ServedProcess) -> None:
    first = await calls_from(served.url, "127.0.0.2", "198.51.100.1")
    second = await calls_from(served.url, "127.0.0.2", "198.51.100.2")
    assert first == second == ADMITTED_TWICE
