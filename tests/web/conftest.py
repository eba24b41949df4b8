"""A running gateway (uvicorn on a free port) with a real worker behind it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from iras.aws import open_clients
from iras.config import Settings
from iras.model import Classifier
from iras.provision import Resources
from iras.web import create_app
from iras.worker import Worker


@dataclass
class Service:
    url: str
    http: httpx.AsyncClient
    worker: Worker | None

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)


@contextlib.asynccontextmanager
async def serve_gateway(settings: Settings) -> AsyncIterator[str]:
    """Run the gateway app on 127.0.0.1 (free port) until the block ends; yield its URL."""
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(30):
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
            await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, resources: Resources, classifier: Classifier
) -> AsyncIterator[Worker]:
    async with open_clients(settings, concurrent_long_polls=settings.receivers) as aws:
        worker = Worker(
            settings,
            aws,
            classifier,
            request_queue_url=resources.request_queue_url,
            name="test-worker",
        )
        task = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            worker.stop()
            await asyncio.wait_for(task, 60)


async def wait_ready(http: httpx.AsyncClient, timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while (await http.get("/readyz")).status_code != 200:  # noqa: ASYNC110 - polled over HTTP
            await asyncio.sleep(0.05)


@pytest.fixture
def gateway_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"idle_exit_s": 0, "wait_timeout_s": 60})


@pytest.fixture
async def service(
    gateway_settings: Settings, resources: Resources, classifier: Classifier
) -> AsyncIterator[Service]:
    """Gateway + one worker, ready."""
    async with (
        serve_gateway(gateway_settings) as url,
        running_worker(gateway_settings, resources, classifier) as worker,
        httpx.AsyncClient(
            base_url=url, timeout=60, limits=httpx.Limits(max_connections=200)
        ) as http,
    ):
        await wait_ready(http)
        yield Service(url, http, worker)


@pytest.fixture
async def gateway_only(gateway_settings: Settings, resources: Resources) -> AsyncIterator[Service]:
    """Gateway with no worker: for validation, which must answer without one."""
    async with (
        serve_gateway(gateway_settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        await wait_ready(http)
        yield Service(url, http, None)
