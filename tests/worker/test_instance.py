"""Instance id resolution: configured, from IMDSv2 (a fake on loopback), or a clear error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from iras.worker.instance import InstanceIdError, resolve_instance_id

TOKEN = "token-123"


@pytest.fixture
async def fake_imds() -> AsyncIterator[str]:
    """An IMDSv2 look-alike: a PUT for a token, then a GET that requires it."""

    async def token(request: web.Request) -> web.Response:
        assert request.headers["X-aws-ec2-metadata-token-ttl-seconds"]
        return web.Response(text=TOKEN)

    async def instance_id(request: web.Request) -> web.Response:
        if request.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            return web.Response(status=401)
        return web.Response(text="i-0abc123\n")

    app = web.Application()
    app.router.add_put("/latest/api/token", token)
    app.router.add_get("/latest/meta-data/instance-id", instance_id)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.parametrize(("configured", "expected"), [(None, None), ("", None), ("i-1", "i-1")])
async def test_configured_ids_never_ask_the_metadata_service(
    configured: str | None, expected: str | None
) -> None:
    # An unreachable URL proves no request is made.
    assert await resolve_instance_id(configured, "http://127.0.0.1:9") == expected


async def test_auto_asks_imdsv2(fake_imds: str) -> None:
    assert await resolve_instance_id("auto", fake_imds) == "i-0abc123"


async def test_auto_without_a_metadata_service_is_a_clear_error() -> None:
    with pytest.raises(InstanceIdError, match="IRAS_INSTANCE_ID"):
        await resolve_instance_id("auto", "http://127.0.0.1:9")
