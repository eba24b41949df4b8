"""Uploads in flight stay within IRAS_UPLOAD_BUDGET_BYTES, however many clients send at once.

Slow clients make it visible: a body that has not finished arriving holds its share of
the budget (charged from its Content-Length before it is read), so uploads beyond the
budget wait, then are refused 503 with Retry-After, while those within it are stored,
byte for byte. The budget's high-water mark, not the process's RSS, is what is measured:
it is what the gateway's upload memory is proportional to.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from iras.aws import open_clients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.web import create_app
from tests.support import wait_until
from tests.web.conftest import serve_gateway, wait_ready

if TYPE_CHECKING:
    from iras.web.upload_budget import BudgetLedger

MiB = 1024 * 1024


def noisy_png(side: int) -> bytes:
    """Random pixels, which do not compress: about 3 * side^2 bytes, distinct every call."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def multipart(field_name: str, files: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    """(Content-Type, body) of a form carrying `files` in `field_name`."""
    boundary = uuid.uuid4().hex
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; '
        f'filename="{name}"\r\nContent-Type: image/png\r\n\r\n'.encode()
        + blob
        + b"\r\n"
        for name, blob in files
    )
    return f"multipart/form-data; boundary={boundary}", body + f"--{boundary}--\r\n".encode()


@dataclass
class SlowUpload:
    """One image posted by a client that sends `first_bytes` of its body, then waits for
    `go` before the rest: the gateway holds it in flight meanwhile."""

    image: bytes
    first_bytes: int = 64 * 1024
    chunked: bool = False  # no Content-Length: the gateway counts bytes as they come
    go: asyncio.Event = field(default_factory=asyncio.Event)
    sent_first: asyncio.Event = field(default_factory=asyncio.Event)

    async def post(self, http: httpx.AsyncClient, path: str = "/v1/classify") -> httpx.Response:
        content_type, body = multipart(
            "files" if path == "/v1/classify" else "myfile",
            [(f"{uuid.uuid4().hex[:8]}.png", self.image)],
        )

        async def stream() -> AsyncIterator[bytes]:
            yield body[: self.first_bytes]
            self.sent_first.set()
            await self.go.wait()
            for start in range(self.first_bytes, len(body), 64 * 1024):
                yield body[start : start + 64 * 1024]

        headers = {"Content-Type": content_type}
        if not self.chunked:
            headers["Content-Length"] = str(len(body))
        return await http.post(path, content=stream(), headers=headers)


@contextlib.asynccontextmanager
async def gateway_with_budget(
    settings: Settings, budget_bytes: int, **more: object
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = settings.model_copy(update={"upload_budget_bytes": budget_bytes, **more})
    app = create_app(settings)
    async with (
        serve_gateway(settings, app) as url,
        httpx.AsyncClient(
            base_url=url, timeout=60, limits=httpx.Limits(max_connections=100)
        ) as http,
    ):
        await wait_ready(http)
        yield app, http


def ledger_of(app: FastAPI) -> BudgetLedger | None:
    """The gateway's budget; None on a gateway without one (the code before it)."""
    budget = getattr(app.state, "upload_budget", None)
    return None if budget is None else budget.ledger


async def stored_inputs(settings: Settings) -> list[bytes]:
    async with open_clients(settings) as aws:
        keys = await aws.objects.list_keys(settings.input_bucket)
        return [await aws.objects.get(settings.input_bucket, key) for key in keys]


def refusals(caplog: pytest.LogCaptureFixture) -> int:
    return sum("refused" in record.getMessage() for record in caplog.records)


async def test_uploads_beyond_the_budget_get_503_and_those_within_it_are_stored(
    gateway_settings: Settings, resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="iras.web.uploads")
    uploads = [SlowUpload(noisy_png(700)) for _ in range(12)]  # 1.47 MB each, spooled to disk
    size = len(uploads[0].image)
    async with gateway_with_budget(gateway_settings, 4 * MiB) as (app, http):
        posts = [asyncio.create_task(upload.post(http)) for upload in uploads]

        async def ten_refused() -> bool:  # 4 MiB holds two: the others wait 1.5 s, in vain
            return refusals(caplog) >= 10

        await wait_until(ten_refused, timeout_s=20)
        for upload in uploads:
            upload.go.set()
        responses = await asyncio.gather(*posts)
        ledger = ledger_of(app)
        assert ledger is not None
        assert ledger.in_flight_bytes == 0  # every share given back
        scraped = metric_values((await http.get("/metrics")).text)  # what operators see
        assert scraped["iras_upload_bytes_high_water"] == ledger.high_water_bytes
        assert scraped["iras_upload_bytes_in_flight"] == 0
        assert scraped["iras_uploads_waiting_for_budget"] == 0

    accepted = [u for u, r in zip(uploads, responses, strict=True) if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 503]
    assert len(accepted) == 2 and len(refused) == 10, [r.status_code for r in responses]
    for response in refused:
        assert response.headers["Retry-After"] == "2"
        assert response.json()["error"] == "upload_budget"
        assert "IRAS_UPLOAD_BUDGET_BYTES" in response.json()["detail"]
    # The two in flight together, never a third: the gateway's upload memory, bounded.
    assert 2 * size < ledger.high_water_bytes <= 4 * MiB
    # Nothing lost: the accepted images are in the input bucket, byte for byte (stored
    # from the files they were spooled to), and nothing of the refused ones.
    assert sorted(await stored_inputs(gateway_settings)) == sorted(u.image for u in accepted)


async def test_a_chunked_upload_is_charged_as_its_bytes_arrive(
    gateway_settings: Settings, resources: Resources
) -> None:
    holding = SlowUpload(noisy_png(900), first_bytes=2_300_000, chunked=True)  # 2.4 MB
    async with gateway_with_budget(gateway_settings, 4 * MiB) as (app, http):
        first = asyncio.create_task(holding.post(http))
        await holding.sent_first.wait()

        async def charged() -> bool:
            ledger = ledger_of(app)
            return ledger is None or ledger.in_flight_bytes >= 2_000_000

        await wait_until(charged, timeout_s=10)
        second = SlowUpload(noisy_png(900), chunked=True)  # another 2.4 MB: over 4 MiB
        second.go.set()
        refused = await second.post(http)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "upload_budget"
        assert "Retry-After" in refused.headers
        holding.go.set()
        assert (await first).status_code == 200
        ledger = ledger_of(app)
        assert ledger is not None and ledger.in_flight_bytes == 0
    assert await stored_inputs(gateway_settings) == [holding.image]


async def test_an_upload_larger_than_the_budget_is_taken_when_it_is_alone(
    gateway_settings: Settings, resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="iras.web.uploads")
    big = noisy_png(700)  # 1.47 MB, over a 1 MiB budget
    small = SlowUpload(noisy_png(200), first_bytes=1024)  # 120 kB, held in flight
    async with gateway_with_budget(gateway_settings, 1 * MiB) as (app, http):
        holding = asyncio.create_task(small.post(http))
        await small.sent_first.wait()

        async def small_charged() -> bool:
            ledger = ledger_of(app)
            return ledger is None or ledger.in_flight_bytes > 0

        await wait_until(small_charged, timeout_s=10)
        refused = await http.post("/v1/classify", files={"files": ("big.png", big)})
        assert refused.status_code == 503, refused.text
        assert "larger than the gateway's budget" in refused.json()["detail"]
        small.go.set()
        assert (await holding).status_code == 200
        alone = await http.post("/v1/classify", files={"files": ("big.png", big)})
        assert alone.status_code == 200, alone.text
    assert sorted(await stored_inputs(gateway_settings)) == sorted([small.image, big])


async def test_a_course_upload_gives_its_share_back_once_stored_not_when_answered(
    gateway_settings: Settings, resources: Resources
) -> None:
    """The course upload waits for its result (here: no worker, so until its 504); its
    bytes are stored and queued long before, and no longer count against the budget."""
    async with gateway_with_budget(gateway_settings, 4 * MiB, wait_timeout_s=5) as (app, http):
        waiting = asyncio.create_task(
            http.post("/upload", files={"myfile": ("test_00.png", noisy_png(700))})
        )

        async def stored_and_released() -> bool:
            ledger = ledger_of(app)
            return ledger is not None and ledger.high_water_bytes > 0 == ledger.in_flight_bytes

        await wait_until(stored_and_released, timeout_s=20)
        assert not waiting.done()  # still waiting for its result
        assert len(await stored_inputs(gateway_settings)) == 1
        assert (await waiting).status_code == 504


def metric_values(text: str) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
