"""The one place that creates AWS clients.

Every process opens its clients once (`async with open_clients(settings) as aws`) and
reuses them for its whole life: a client owns a connection pool, and creating one per
call costs more than the call. Endpoint, region, retries and pool size come from
`Settings`; credentials come only from the standard AWS chain.

The per-image calls go through `aws.objects` and `aws.messages`, made on the lean path
or on botocore as `aws_client` says (`iras.aws.choice`); the rest through botocore's
full clients, `aws.s3`, `aws.sqs`, `aws.ec2` and `aws.autoscaling`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import aioboto3
import aiobotocore.session
from botocore.config import Config
from botocore.handlers import add_expect_header

from iras.aws.boto import BotoMessages, BotoObjects
from iras.aws.choice import Choice, Endpoints, choose_client
from iras.aws.lean import Endpoint, S3Objects, SignedHttp, SqsMessages
from iras.aws.lean.http1 import Http1Client
from iras.aws.types import BotocoreClient, MessageQueue, ObjectStore
from iras.config import Settings

log = logging.getLogger(__name__)

#: Extra seconds a read may take beyond the long-poll wait before it counts as stuck.
_READ_MARGIN_S = 10.0


@dataclass(frozen=True, slots=True)
class AwsClients:
    """The clients one process shares.

    `objects` (S3's objects) and `messages` (SQS's messages) make the calls of every
    image; `s3`, `sqs`, `ec2` and `autoscaling` are botocore's full clients, for
    everything else: buckets and queues made and removed, queue URLs, the fleet, the
    scaler's lease. `objects_apart`, when opened (`open_clients(objects_apart=n)`), is an
    `objects` on a pool of n connections of its own, for calls that must never hold a
    connection the others need (the gateway's lookups, `iras.web.lookup`).
    """

    objects: ObjectStore
    messages: MessageQueue
    objects_apart: ObjectStore | None
    s3: BotocoreClient
    sqs: BotocoreClient
    ec2: BotocoreClient
    autoscaling: BotocoreClient


def client_config(
    settings: Settings, concurrent_long_polls: int = 2, max_connections: int | None = None
) -> Config:
    """botocore settings for every IRAS client.

    The pool holds at least twice the concurrent long polls: aiobotocore's default of 10
    connections lets a few parked receives starve every other call for seconds.
    `max_connections` sizes it exactly instead, for clients that make no long polls (the
    gateway's lookups, `iras.web.lookup`).
    """
    return Config(
        region_name=settings.region,
        max_pool_connections=max_connections or max(20, 2 * concurrent_long_polls + 10),
        connect_timeout=settings.aws_connect_timeout_s,
        read_timeout=settings.receive_wait_s + _READ_MARGIN_S,
        retries={"mode": "standard", "max_attempts": settings.aws_max_attempts},
    )


@asynccontextmanager
async def open_clients(
    settings: Settings, concurrent_long_polls: int = 2, objects_apart: int = 0
) -> AsyncIterator[AwsClients]:
    """Open S3, SQS, EC2 and Auto Scaling clients for the configured endpoint and close
    them on exit (a client opens no connection until its first call); with
    `objects_apart`, also `AwsClients.objects_apart` on a pool of that many connections.
    (In this session: a second session would load the service models again, ~14 MB.)"""
    core = aiobotocore.session.get_session()
    session = aioboto3.Session(botocore_session=core)
    config = client_config(settings, concurrent_long_polls)
    async with AsyncExitStack() as stack:
        clients = {
            service: await stack.enter_async_context(
                session.client(
                    service,
                    endpoint_url=settings.endpoint_url,
                    region_name=settings.region,
                    config=config,
                )
            )
            for service in ("s3", "sqs", "ec2", "autoscaling")
        }
        s3, sqs = clients["s3"], clients["sqs"]
        send_bodies_at_once(s3)
        choice = choose_client(settings.aws_client, Endpoints.of(s3, sqs), os.environ)
        log_choice(settings, choice)
        objects: ObjectStore
        messages: MessageQueue
        apart: ObjectStore | None = None
        apart_config = client_config(settings, max_connections=objects_apart)
        if choice.kind == "lean":
            ca_bundle = core.get_config_variable("ca_bundle")
            http = await stack.enter_async_context(object_session(settings, config, ca_bundle))
            credentials = await session.get_credentials()
            objects, messages = lean_clients(settings, http, credentials, s3, sqs)
            if objects_apart:
                own = object_session(settings, apart_config, ca_bundle)
                apart, _ = lean_clients(
                    settings, await stack.enter_async_context(own), credentials, s3, sqs
                )
        else:
            objects, messages = BotoObjects(s3), BotoMessages(sqs)
            if objects_apart:
                apart_s3 = await stack.enter_async_context(
                    session.client(
                        "s3",
                        endpoint_url=settings.endpoint_url,
                        region_name=settings.region,
                        config=apart_config,
                    )
                )
                send_bodies_at_once(apart_s3)
                apart = BotoObjects(apart_s3)
        yield AwsClients(objects, messages, apart, s3, sqs, clients["ec2"], clients["autoscaling"])


def lean_clients(
    settings: Settings,
    http: Http1Client,
    credentials: object,
    s3: BotocoreClient,
    sqs: BotocoreClient,
) -> tuple[S3Objects, SqsMessages]:
    """The lean path's clients, for the endpoints botocore resolved for `s3` and `sqs`."""

    def signed(client: BotocoreClient) -> SignedHttp:
        """One each: their retry switches and retry quotas are separate, as botocore's."""
        return SignedHttp(
            credentials,
            http,
            client.meta.service_model,
            settings.region,
            settings.aws_max_attempts,
        )

    s3_endpoint = Endpoint(
        s3.meta.endpoint_url.rstrip("/"), path_style=settings.endpoint_url is not None
    )
    return (
        S3Objects(signed(s3), s3_endpoint, fallback=BotoObjects(s3)),
        SqsMessages(signed(sqs), sqs.meta.endpoint_url, fallback=BotoMessages(sqs)),
    )


def log_choice(settings: Settings, choice: Choice) -> None:
    """One line when the choice is not what `aws_client` alone would say."""
    if choice.lean_unsupported is None or settings.aws_client == "botocore":
        return
    if choice.kind == "botocore":
        log.info("AWS calls made on botocore, not the lean path: %s", choice.lean_unsupported)
    else:
        log.warning(
            "AWS calls made on the lean path (IRAS_AWS_CLIENT=lean), though %s",
            choice.lean_unsupported,
        )


def object_session(settings: Settings, config: Config, ca_bundle: str | None) -> Http1Client:
    """The HTTP client of `iras.aws.lean`, with the limits, timeouts and CA bundle of
    botocore's."""
    return Http1Client(
        max_connections=config.max_pool_connections,
        connect_timeout_s=settings.aws_connect_timeout_s,
        read_timeout_s=config.read_timeout,
        ca_bundle=ca_bundle,
    )


def send_bodies_at_once(s3: BotocoreClient) -> None:
    """Stop botocore from asking `Expect: 100-continue` before each PutObject body.

    botocore asks for every body, whatever its size, to spare sending one that S3 would
    refuse; that costs a round trip per upload (headers, wait for "100 Continue", body),
    on the path of every request and every result. IRAS's bodies are images of at most
    `max_upload_bytes` and small results, cheaper to send than to ask about.
    """
    s3.meta.events.unregister("before-call.s3", add_expect_header)
