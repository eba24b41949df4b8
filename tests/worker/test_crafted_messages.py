"""Crafted request messages cost their own message only, never the batch they arrive with.

Anyone who can send to the request queue can send anything: a `reply_to` that is a
number, a name with a lone surrogate (valid JSON, `"\\ud800"`, that no S3 key or SQS body
can carry). Before, either raised inside publishing and failed every request of the batch,
which came round again and was dead-lettered with it. Real worker, real embedded AWS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any, cast

import pytest

from iras.aws import AwsClients, MessageQueue, ObjectStore
from iras.config import Settings
from iras.infra.provision import Resources
from iras.messages import Result, decode_result, input_key, result_key
from iras.model import Classifier
from iras.worker.publishing import Outgoing, Publisher
from iras.worker.receiving import Received, parse_message
from iras.worker.worker import ExitReason, Worker
from tests.support import collect_results, image_bytes, queue_counts, submit

pytestmark = pytest.mark.both_aws_clients


async def crafted_request(
    aws: AwsClients, settings: Settings, name: str, reply_to: object, seed: int
) -> tuple[str, str]:
    """(request id, body) of a request for a real uploaded image, with `reply_to` and the
    raw JSON of `name` as given (`name` is JSON text: `"\\ud800"` stays an escape)."""
    request_id = uuid.uuid4().hex
    await aws.objects.put(settings.input_bucket, input_key(request_id), image_bytes(seed=seed))
    body = (
        f'{{"v":1,"request_id":"{request_id}","job_id":"crafted","key":"{input_key(request_id)}",'
        f'"name":{name},"reply_to":{json.dumps(reply_to)},"submitted_at":{time.time()}}}'
    )
    return request_id, body


async def stored_result(aws: AwsClients, settings: Settings, request_id: str) -> Result | None:
    try:
        stored = await aws.s3.get_object(
            Bucket=settings.output_bucket, Key=result_key(settings, request_id)
        )
    except aws.s3.exceptions.NoSuchKey:
        return None
    return decode_result(await stored["Body"].read())


async def dead_letters(aws: AwsClients, resources: Resources) -> int:
    visible, in_flight = await queue_counts(aws, resources.dead_letter_queue_url)
    return visible + in_flight


async def test_two_crafted_messages_in_a_batch_of_eight_cost_only_themselves(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
) -> None:
    settings = settings.model_copy(update={"batch_size": 8, "batch_wait_ms": 500})
    good = [
        await crafted_request(aws, settings, f'"good_{i}.jpg"', reply_queue, seed=i)
        for i in range(6)
    ]
    number_id, number_body = await crafted_request(aws, settings, '"n.jpg"', 12345, seed=6)
    surrogate_id, surrogate_body = await crafted_request(
        aws, settings, '"\\ud800.jpg"', reply_queue, seed=7
    )
    bodies = [body for _, body in good]
    bodies[2:2] = [number_body, surrogate_body]
    assert await aws.messages.send_batch(resources.request_queue_url, bodies[:5]) == []
    assert await aws.messages.send_batch(resources.request_queue_url, bodies[5:]) == []
    worker = Worker(
        settings,
        aws,
        classifier,
        request_queue_url=resources.request_queue_url,
        name="crafted-worker",
        burst=True,
    )
    run = asyncio.create_task(worker.run())

    # 6 labels and the refused request's own error; the number `reply_to` leaves no one
    # to answer, so it is deleted, as any malformed message is.
    results = {r.request_id: r for r in await collect_results(aws, reply_queue, 7, 30.0)}
    assert await asyncio.wait_for(run, 30) is ExitReason.EMPTY
    assert sorted(results) == sorted([request_id for request_id, _ in good] + [surrogate_id])
    expected = classifier.classify([image_bytes(seed=i) for i in range(6)], settings.top_k)
    for i, ((request_id, _), outcome) in enumerate(zip(good, expected, strict=True)):
        result = results[request_id]
        assert result.error is None and result.name == f"good_{i}.jpg"
        assert result.label == getattr(outcome, "label", None)
        assert await stored_result(aws, settings, request_id) == result
    refused = results[surrogate_id]
    assert refused.label is None and refused.error is not None
    assert "'name' is not valid Unicode" in refused.error and refused.name == "?.jpg"
    assert await stored_result(aws, settings, surrogate_id) == refused
    assert await stored_result(aws, settings, number_id) is None
    assert await queue_counts(aws, resources.request_queue_url) == (0, 0)
    assert await dead_letters(aws, resources) == 0


async def receive_all(aws: AwsClients, queue_url: str, count: int) -> list[Received]:
    """Receive `count` messages of `queue_url` and hold them, as a worker does."""
    received: list[Received] = []
    async with asyncio.timeout(30):
        while len(received) < count:
            got = await aws.messages.receive(queue_url, max_messages=10, wait_s=1)
            received += [parse_message(message, time.time()) for message in got]
    return received


def labelled(received: Received) -> Outgoing:
    assert received.request is not None
    request = received.request
    result = Result(
        request.request_id, request.job_id, request.name, "m", "w", label="tabby", top=[]
    )
    return Outgoing(received, result)


class FaultyQueue:
    """The real message queue, but a batch that carries `poison` raises `TypeError`, as
    a body no client can send would: what a bug, not AWS, raises."""

    def __init__(self, inner: MessageQueue, poison: str) -> None:
        self._inner, self._poison = inner, poison

    async def send_batch(self, queue_url: str, bodies: Sequence[str]) -> list[int]:
        if any(self._poison in body for body in bodies):
            raise TypeError("a body this client cannot send")
        return await self._inner.send_batch(queue_url, bodies)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class FaultyStore:
    """The real object store, but the object of `poison` raises `ValueError`."""

    def __init__(self, inner: ObjectStore, poison: str) -> None:
        self._inner, self._poison = inner, poison

    async def put(self, bucket: str, key: str, body: bytes, **kwargs: Any) -> None:
        if self._poison in key:
            raise ValueError("an object this client cannot store")
        await self._inner.put(bucket, key, body, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_an_item_whose_store_or_reply_raises_fails_alone(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    reply_queue: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Whatever gets past decoding (a bug, a client that raises), publishing isolates it:
    the other items are stored, answered and deleted; the one at fault is not deleted (it
    comes again), and is logged with its request id."""
    images = {f"p_{i}.jpg": image_bytes(seed=i) for i in range(6)}
    await submit(aws, settings, resources, images, reply_queue)
    received = await receive_all(aws, resources.request_queue_url, 6)
    fine, fine_too, bad_reply, bad_name, send_fault, store_fault = map(labelled, received)
    # A reply queue that is not a string, and a name UTF-8 cannot encode.
    request = bad_reply.received.request
    assert request is not None
    unfit = dataclasses.replace(request, reply_to=12345)  # type: ignore[arg-type]  # the point
    bad_reply = Outgoing(dataclasses.replace(bad_reply.received, request=unfit), bad_reply.result)
    bad_name = Outgoing(bad_name.received, dataclasses.replace(bad_name.result, name="\ud800.j"))
    # A reply and a store that raise what no AWS error is.
    faulty = dataclasses.replace(
        aws,
        messages=cast(MessageQueue, FaultyQueue(aws.messages, send_fault.result.request_id)),
        objects=cast(ObjectStore, FaultyStore(aws.objects, store_fault.result.request_id)),
    )
    publisher = Publisher(settings, faulty, resources.request_queue_url)
    items = [fine, bad_reply, bad_name, send_fault, store_fault, fine_too]

    with caplog.at_level(logging.WARNING, logger="iras.worker.publishing"):
        deleted = await publisher.publish(items)

    def ids(outgoing: Sequence[Outgoing]) -> list[str]:
        return sorted(item.result.request_id for item in outgoing)

    assert sorted(d.message_id for d in deleted) == sorted(
        item.received.message_id for item in (fine, fine_too)
    )
    replies = await collect_results(aws, reply_queue, 3, 30.0)
    assert sorted(r.request_id for r in replies) == ids([fine, fine_too, store_fault])
    stored = [item for item in items if await stored_result(aws, settings, item.result.request_id)]
    assert ids(stored) == ids([fine, fine_too, bad_reply, send_fault])
    assert await queue_counts(aws, resources.request_queue_url) == (0, 4)  # to come again
    for item in (bad_reply, bad_name, send_fault, store_fault):
        assert item.result.request_id in caplog.text
