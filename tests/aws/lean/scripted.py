"""A local HTTP server that answers what each test scripts, and lean clients pointed at it:
for the tests of what the lean path does with answers (retries, redirects, fallbacks)
that the embedded AWS never gives."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from typing import Any

import botocore.session
import pytest
from aiobotocore.credentials import AioCredentials
from aiohttp import web
from botocore.model import ServiceModel

from iras.aws.lean import Endpoint, S3Objects, SignedHttp
from iras.aws.lean.http1 import Http1Client

Script = list[Callable[[web.Request], web.StreamResponse]]


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[str, Script, list[str]]]:
    """A local HTTP server answering with the next function of `script`; `seen` lists
    the methods of the requests it got."""
    script: Script = []
    seen: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(request.method)
        await request.read()
        return script.pop(0)(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", script, seen
    await runner.cleanup()


@pytest.fixture
async def http_session() -> AsyncIterator[Http1Client]:
    async with Http1Client(max_connections=10, connect_timeout_s=5, read_timeout_s=10) as http:
        yield http


@functools.cache
def service_model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


async def no_wait(seconds: float) -> None:
    """The retries' sleep, skipped: the tests count attempts, not seconds."""


def signed_http(
    session: Http1Client, service: str, attempts: int = 3, **options: Any
) -> SignedHttp:
    """A `SignedHttp` that does not wait between attempts, unless `options` give a `sleep`."""
    credentials = AioCredentials("placeholder", "placeholder")
    options.setdefault("sleep", no_wait)
    return SignedHttp(
        credentials, session, service_model(service), "us-east-1", attempts, **options
    )


def lean_s3(endpoint: str, session: Http1Client, attempts: int = 3) -> S3Objects:
    signed = signed_http(session, "s3", attempts)
    return S3Objects(signed, Endpoint(endpoint, path_style=True))


def s3_error(status: int, code: str) -> Callable[[web.Request], web.StreamResponse]:
    body = f"<Error><Code>{code}</Code><Message>scripted</Message></Error>"
    return lambda request: web.Response(status=status, text=body, content_type="application/xml")


def ok(request: web.Request) -> web.StreamResponse:
    return web.Response(status=200, headers={"ETag": '"abc"'})
