"""Helpers for tests: synthetic images, submitting requests as the gateway does, waiting."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping

from PIL import Image

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.messages import Request, Result, decode_result, encode_request, input_key


def image_bytes(
    size: tuple[int, int] = (320, 240),
    color: tuple[int, int, int] = (200, 40, 40),
    fmt: str = "JPEG",
    seed: int = 0,
) -> bytes:
    """A small synthetic image: a coloured field with a gradient, distinct per seed."""
    image = Image.new("RGB", size, color)
    pixels = image.load()
    assert pixels is not None
    for x in range(0, size[0], 4):
        for y in range(0, size[1], 4):
            pixels[x, y] = ((x * 3 + seed * 37) % 256, (y * 5 + seed * 11) % 256, (x + y) % 256)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


async def submit(
    aws: AwsClients,
    settings: Settings,
    resources: Resources,
    images: Mapping[str, bytes],
    reply_to: str | None,
    job_id: str = "job-1",
) -> list[Request]:
    """Upload `images` (file name -> bytes) and queue one request each, as the gateway does."""
    requests = []
    for name, blob in images.items():
        request_id = uuid.uuid4().hex
        key = input_key(request_id)
        await aws.objects.put(settings.input_bucket, key, blob)
        requests.append(
            Request(
                request_id=request_id,
                job_id=job_id,
                key=key,
                name=name,
                reply_to=reply_to,
                submitted_at=time.time(),
            )
        )
    failed = await aws.messages.send_batch(
        resources.request_queue_url, [encode_request(r) for r in requests]
    )
    assert failed == []
    return requests


async def collect_results(
    aws: AwsClients, queue_url: str, count: int, timeout_s: float = 60.0
) -> list[Result]:
    """Long-poll `queue_url` until `count` results arrived; fail after `timeout_s`."""
    results: list[Result] = []
    async with asyncio.timeout(timeout_s):
        while len(results) < count:
            messages = await aws.messages.receive(queue_url, max_messages=10, wait_s=1)
            results += [decode_result(m.body) for m in messages]
            await aws.messages.delete_batch(queue_url, [m.receipt_handle for m in messages])
    return results


async def queue_counts(aws: AwsClients, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    return await aws.messages.depth(queue_url)


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout_s: float = 30.0, period_s: float = 0.1
) -> None:
    """Poll an async `predicate` until it is true; fail the test after `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        while not await predicate():  # noqa: ASYNC110 - the condition lives in another system
            await asyncio.sleep(period_s)
