"""SQS batch helpers: chunking is pure; batch calls report failed entries by index."""

from __future__ import annotations

import pytest

from iras.aws import AwsClients
from iras.aws.queues import change_visibility_batch, chunked, delete_batch, send_batch
from iras.infra.provision import Resources


@pytest.mark.parametrize(
    ("length", "sizes"),
    [(0, []), (1, [1]), (10, [10]), (11, [10, 1]), (25, [10, 10, 5])],
)
def test_chunked(length: int, sizes: list[int]) -> None:
    chunks = list(chunked(list(range(length))))
    assert [len(c) for c in chunks] == sizes
    assert [x for c in chunks for x in c] == list(range(length))


async def test_send_receive_delete_in_batches(aws: AwsClients, resources: Resources) -> None:
    url = resources.request_queue_url
    assert await send_batch(aws.sqs, url, [f"m{i}" for i in range(23)]) == []
    handles = []
    while len(handles) < 23:
        response = await aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        handles += [m["ReceiptHandle"] for m in response.get("Messages", [])]
    assert await change_visibility_batch(aws.sqs, url, handles[:3], 0) == []
    assert await delete_batch(aws.sqs, url, handles) == []


async def test_failed_entries_are_reported_by_index(aws: AwsClients, resources: Resources) -> None:
    url = resources.request_queue_url
    await send_batch(aws.sqs, url, ["one"])
    response = await aws.sqs.receive_message(QueueUrl=url)
    good = response["Messages"][0]["ReceiptHandle"]
    failed = await change_visibility_batch(aws.sqs, url, ["x", good, "not-a-handle"], 5)
    assert failed == [0, 2]
