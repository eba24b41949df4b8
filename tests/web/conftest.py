"""A running gateway with a real worker behind it: in-process (`service`) or `iras serve`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from iras.aws import open_clients
from iras.bench.serve_process import free_port
from iras.config import Settings
from iras.infra.provision import Resources
from iras.local_aws import dummy_credentials
from iras.model import Classifier
from iras.web import create_app
from iras.worker.worker import Worker


@dataclass
class Service:
    url: str
    http: httpx.AsyncClient
    worker: Worker | None

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)


@contextlib.asynccontextmanager
async def serve_gateway(settings: Settings, app: FastAPI | None = None) -> AsyncIterator[str]:
    """Run the gateway app (`app`, or one made for `settings`) on 127.0.0.1 (free port)
    until the block ends; yield its URL."""
    config = uvicorn.Config(
        app or create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
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
    # The worker runs in-process here: no autoscaler launching instances beside it.
    return settings.model_copy(update={"idle_exit_s": 0, "wait_timeout_s": 60, "autoscaler": False})


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


@dataclass
class ServedProcess(Service):
    """`iras serve` running as a real process, as a user starts it."""

    process: subprocess.Popen[bytes] | None = None
    aws_endpoint: str = ""


@contextlib.asynccontextmanager
async def iras_serve(
    log_path: Path, *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[subprocess.Popen[bytes], httpx.AsyncClient, str]]:
    """`iras serve --port <free> *args` as a real process, ready; SIGINT (then kill) after.

    Yields the process, a client for its gateway and the gateway's URL. The process's
    output goes to `log_path`, shown when it dies before it is ready.
    """
    os.environ.update(dummy_credentials(os.environ))  # for tests that call its AWS directly
    port = free_port()
    base = {
        name: value
        for name, value in os.environ.items()
        if name not in {"IRAS_ENDPOINT_URL", "AWS_ENDPOINT_URL"}
    }
    log = log_path.open("wb")
    process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block; waits are awaited
        [sys.executable, "-m", "iras", "serve", "--port", str(port), *args],
        env={**base, "IRAS_INFERENCE_THREADS": "1", **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            async with asyncio.timeout(90):
                while True:
                    assert process.poll() is None, log_path.read_text()
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    await asyncio.sleep(0.2)
            yield process, http, url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), 60)
            except TimeoutError:
                process.kill()
        log.close()


@pytest.fixture
async def served(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[ServedProcess]:
    """`iras serve` on free ports with its own embedded AWS, ready; stopped afterwards.

    A test marked `serve_env(NAME="value", ...)` runs it with those variables set too.
    """
    marker = request.node.get_closest_marker("serve_env")
    extra_env = dict(marker.kwargs) if marker is not None else {}
    aws_port = free_port()
    async with iras_serve(tmp_path / "serve.log", "--aws-port", str(aws_port), env=extra_env) as (
        process,
        http,
        url,
    ):
        yield ServedProcess(url, http, None, process, f"http://127.0.0.1:{aws_port}")
