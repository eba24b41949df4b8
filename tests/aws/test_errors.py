"""`fail_fast_when_unreachable` reaches every kind of client: the lean path's, the
implementations on botocore, and botocore's own."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from iras.aws import AwsClients, open_clients
from iras.aws.errors import fail_fast_when_unreachable
from iras.config import Settings
from iras.local_aws import dummy_credentials


def closed_port_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


#: One call of each kind, on an endpoint that refuses connections.
CALLS: dict[str, Callable[[AwsClients], Awaitable[Any]]] = {
    "objects": lambda aws: aws.objects.get("b-1", "k"),
    "messages": lambda aws: aws.messages.depth("http://127.0.0.1/123/q"),
    "s3": lambda aws: aws.s3.head_bucket(Bucket="b-1"),
    "sqs": lambda aws: aws.sqs.get_queue_url(QueueName="q"),
}


@pytest.mark.parametrize("aws_client", ["lean", "botocore"])
@pytest.mark.parametrize("call", sorted(CALLS))
async def test_a_refused_connect_is_raised_after_one_attempt(
    monkeypatch: pytest.MonkeyPatch, aws_client: str, call: str
) -> None:
    for name, value in dummy_credentials(os.environ).items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        endpoint_url=closed_port_endpoint(), aws_client=aws_client, aws_max_attempts=20
    )
    async with open_clients(settings) as aws:
        fail_fast_when_unreachable(aws.objects, aws.messages, aws.s3, aws.sqs)
        fail_fast_when_unreachable(aws.objects, aws.s3)  # twice is the same as once
        sends = 0

        def count(**_: Any) -> None:
            nonlocal sends
            sends += 1

        for client in (aws.s3, aws.sqs):
            client.meta.events.register("before-send", count)
        # Twenty attempts would take tens of seconds of backoff; one takes milliseconds.
        with pytest.raises(EndpointConnectionError):
            async with asyncio.timeout(5):
                await CALLS[call](aws)
    # botocore's attempts are counted here (the lean path's calls do not pass by it).
    assert sends == (0 if aws_client == "lean" and call in {"objects", "messages"} else 1)
