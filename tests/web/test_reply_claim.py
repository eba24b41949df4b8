"""A reply queue named outright (`IRAS_REPLY_QUEUE`) serves one gateway at a time: a second
one is refused, saying which holds it, and takes over once the first has stopped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources, find_queue_url
from tests.support import wait_until
from tests.web.conftest import serve_gateway, wait_ready

QUEUE = "student-resp-queue"


@contextlib.asynccontextmanager
async def gateway(settings: Settings, gateway_id: str) -> AsyncIterator[httpx.AsyncClient]:
    named = settings.model_copy(update={"reply_queue": QUEUE, "gateway_id": gateway_id})
    async with serve_gateway(named) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield http


async def test_a_second_gateway_on_the_same_reply_queue_is_refused_until_the_first_stops(
    gateway_settings: Settings, resources: Resources, aws: AwsClients
) -> None:
    first_gateway = gateway(gateway_settings, "gw-first")
    first = await first_gateway.__aenter__()
    try:
        await wait_ready(first)
        async with gateway(gateway_settings, "gw-second") as second:

            async def refused_naming_the_holder() -> bool:
                answer = await second.get("/readyz")
                return answer.status_code == 503 and "'gw-first'" in answer.json()["detail"]

            await wait_until(refused_naming_the_holder, timeout_s=20)
            refusal = (await second.get("/readyz")).json()
            assert refusal["error"] == "not_ready" and QUEUE in refusal["detail"]
            assert (await first.get("/readyz")).status_code == 200  # still the holder's
            # The second stays refused while the first runs (its claim is renewed).
            await asyncio.sleep(gateway_settings.leader_lease_s / 2)
            assert (await second.get("/readyz")).status_code == 503

            await first_gateway.__aexit__(None, None, None)  # a clean stop frees the claim
            first_gateway = None

            async def ready() -> bool:
                return (await second.get("/readyz")).status_code == 200

            await wait_until(ready, timeout_s=20)  # the second takes the queue over
    finally:
        if first_gateway is not None:
            await first_gateway.__aexit__(None, None, None)
    # A queue named outright is the operator's: kept at stop, and empty.
    url = await find_queue_url(aws.sqs, QUEUE)
    assert url is not None
    depth = await aws.messages.depth(url)
    assert (depth.visible, depth.in_flight) == (0, 0)
