"""`ObjectStore` and `MessageQueue` on botocore's clients (aioboto3), for where the lean
path of `iras.aws.lean` does not go: an HTTP proxy, FIPS or dual-stack endpoints
(`iras.aws.choice`), or `aws_client=botocore` by choice.

Each method is the one botocore call it names, so it raises what botocore raises and
retries as the client's configuration says (`iras.aws.clients.client_config`). It costs
~2.5 ms of client CPU a call where the lean path costs ~0.2 ms.
"""

from __future__ import annotations

from typing import Any

from botocore import xform_name

from iras.aws.queues import SqsCalls
from iras.aws.types import BotocoreClient


class BotocoreBacked:
    """A client made on one botocore client (`client`), which `fail_fast_when_unreachable`
    reaches through."""

    def __init__(self, client: BotocoreClient) -> None:
        self.client = client


class BotoObjects(BotocoreBacked):
    """`ObjectStore` on an S3 client."""

    async def put(
        self, bucket: str, key: str, body: bytes, content_type: str = "binary/octet-stream"
    ) -> None:
        await self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    async def get(self, bucket: str, key: str) -> bytes:
        response = await self.client.get_object(Bucket=bucket, Key=key)
        async with response["Body"] as stream:
            return bytes(await stream.read())

    async def delete(self, bucket: str, key: str) -> None:
        await self.client.delete_object(Bucket=bucket, Key=key)

    async def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [entry["Key"] async for page in pages for entry in page.get("Contents", ())]


class BotoMessages(BotocoreBacked, SqsCalls):
    """`MessageQueue` on an SQS client: `SqsCalls`'s parameters are botocore's."""

    async def _request(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = await getattr(self.client, xform_name(operation))(**params)
        return response
