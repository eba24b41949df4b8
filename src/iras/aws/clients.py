"""The one place that creates AWS clients.

Every process opens its clients once (`async with open_clients(settings) as aws`) and
reuses them for its whole life: a client owns a connection pool, and creating one per
call costs more than the call. Endpoint, region, retries and pool size come from
`Settings`; credentials come only from the standard AWS chain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.handlers import add_expect_header

from iras.aws.lean import Endpoint, S3Objects, SignedHttp, SqsMessages
from iras.aws.lean.http1 import Http1Client
from iras.config import Settings

#: Extra seconds a read may take beyond the long-poll wait before it counts as stuck.
_READ_MARGIN_S = 10.0

AwsClient = Any  # aioboto3 clients are generated at run time and carry no static types.


@dataclass(frozen=True, slots=True)
class AwsClients:
    """The clients one process shares: S3, SQS and EC2 (the calls made for every image
    on the lean path of `iras.aws.lean`)."""

    s3: AwsClient
    sqs: AwsClient
    ec2: AwsClient


def client_config(settings: Settings, concurrent_long_polls: int = 2) -> Config:
    """botocore settings for every IRAS client.

    The pool holds at least twice the concurrent long polls: aiobotocore's default of 10
    connections lets a few parked receives starve every other call for seconds.
    """
    return Config(
        region_name=settings.region,
        max_pool_connections=max(20, 2 * concurrent_long_polls + 10),
        connect_timeout=settings.aws_connect_timeout_s,
        read_timeout=settings.receive_wait_s + _READ_MARGIN_S,
        retries={"mode": "standard", "max_attempts": settings.aws_max_attempts},
    )


@asynccontextmanager
async def open_clients(
    settings: Settings, concurrent_long_polls: int = 2
) -> AsyncIterator[AwsClients]:
    """Open S3, SQS and EC2 clients for the configured endpoint and close them on exit."""
    session = aioboto3.Session()
    config = client_config(settings, concurrent_long_polls)
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(object_session(settings, config))
        clients = {
            service: await stack.enter_async_context(
                session.client(
                    service,
                    endpoint_url=settings.endpoint_url,
                    region_name=settings.region,
                    config=config,
                )
            )
            for service in ("s3", "sqs", "ec2")
        }
        send_bodies_at_once(clients["s3"])
        credentials = await session.get_credentials()

        def signed(service: str) -> SignedHttp:  # one each: their retry switches are separate
            return SignedHttp(
                credentials, http, service, settings.region, settings.aws_max_attempts
            )

        s3, sqs = clients["s3"], clients["sqs"]
        s3_endpoint = Endpoint(
            s3.meta.endpoint_url.rstrip("/"), path_style=settings.endpoint_url is not None
        )
        yield AwsClients(
            s3=S3Objects(s3, signed("s3"), s3_endpoint),
            sqs=SqsMessages(sqs, signed("sqs"), sqs.meta.endpoint_url),
            ec2=clients["ec2"],
        )


def object_session(settings: Settings, config: Config) -> Http1Client:
    """The HTTP client of `iras.aws.lean`, with the limits and timeouts of botocore's."""
    return Http1Client(
        max_connections=config.max_pool_connections,
        connect_timeout_s=settings.aws_connect_timeout_s,
        read_timeout_s=config.read_timeout,
    )


def send_bodies_at_once(s3: AwsClient) -> None:
    """Stop botocore from asking `Expect: 100-continue` before each PutObject body.

    botocore asks for every body, whatever its size, to spare sending one that S3 would
    refuse; that costs a round trip per upload (headers, wait for "100 Continue", body),
    on the path of every request and every result. IRAS's bodies are images of at most
    `max_upload_bytes` and small results, cheaper to send than to ask about.
    """
    s3.meta.events.unregister("before-call.s3", add_expect_header)
