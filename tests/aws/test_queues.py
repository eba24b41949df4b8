"""SQS's batch calls: chunking is pure; batch calls report failed entries by index.

The calls run on both implementations (`both_aws_clients`): `SqsCalls` is shared, and
what differs is how each call is made.
"""

from __future__ import annotations

import pytest

from iras.aws import AwsClients, QueueDepth, QueueMessage
from iras.aws.queues import chunked
from iras.aws.types import OutboundMessage
from iras.infra.provision import Resources


@pytest.mark.parametrize(
    ("length", "sizes"),
    [(0, []), (1, [1]), (10, [10]), (11, [10, 1]), (25, [10, 10, 5])],
)
def test_chunked(length: int, sizes: list[int]) -> None:
    chunks = list(chunked(list(range(length))))
    assert [len(c) for c in chunks] == sizes
    assert [x for c in chunks for x in c] == list(range(length))


@pytest.mark.both_aws_clients
async def test_send_receive_delete_in_batches(aws: AwsClients, resources: Resources) -> None:
    url = resources.request_queue_url
    assert await aws.messages.send_batch(url, [f"m{i}" for i in range(23)]) == []
    received = []
    while len(received) < 23:
        received += await aws.messages.receive(url, max_messages=10)
    assert sorted(m.body for m in received) == sorted(f"m{i}" for i in range(23))
    assert await aws.messages.depth(url) == QueueDepth(visible=0, in_flight=23)
    handles = [m.receipt_handle for m in received]
    assert await aws.messages.change_visibility_batch(url, handles[:3], 0) == []
    assert await aws.messages.delete_batch(url, handles) == []
    assert await aws.messages.send_batch(url, []) == []  # nothing to send: no call
    assert await aws.messages.depth(url) == (0, 0)


@pytest.mark.both_aws_clients
async def test_failed_entries_are_reported_by_index(aws: AwsClients, resources: Resources) -> None:
    url = resources.request_queue_url
    await aws.messages.send_batch(url, ["one"])
    (message,) = await aws.messages.receive(url)
    good = message.receipt_handle
    failed = await aws.messages.change_visibility_batch(url, ["x", good, "not-a-handle"], 5)
    assert failed == [0, 2]
    bad = [f"not-a-handle-{i}" for i in range(14)]
    many = [*bad[:11], good, *bad[11:]]  # two calls: indexes count across them
    assert await aws.messages.delete_batch(url, many) == [*range(11), *range(12, 15)]


@pytest.mark.both_aws_clients
async def test_message_attributes_travel_only_when_sent_and_asked_for(
    aws: AwsClients, resources: Resources
) -> None:
    url = resources.request_queue_url
    carried = {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01", "tracestate": "v=1"}
    sent = [OutboundMessage("with", carried), "plain", OutboundMessage("empty", {})]
    assert await aws.messages.send_batch(url, sent) == []
    received = []
    while len(received) < 3:
        received += await aws.messages.receive(
            url, max_messages=10, attribute_names=["traceparent", "tracestate"]
        )
    by_body = {message.body: message.attributes for message in received}
    assert by_body == {"with": carried, "plain": {}, "empty": {}}
    await aws.messages.change_visibility_batch(url, [m.receipt_handle for m in received], 0)
    unasked: list[QueueMessage] = []
    while len(unasked) < 3:  # a receive that names none brings none
        unasked += await aws.messages.receive(url, max_messages=10)
    assert all(message.attributes == {} for message in unasked)
