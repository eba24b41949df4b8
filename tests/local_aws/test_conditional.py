"""S3's conditional writes on the embedded AWS: honoured (not answered by the fast path for
plain PUTs, `s3_objects`), and of concurrent ones exactly one succeeds, as in S3.

(moto's check-then-write could let two through; `ConditionalWrites` serialises them. The
race was not seen here without it either, so these tests guard the semantics the lease
relies on rather than reproduce that race.)"""

from __future__ import annotations

import asyncio

from botocore.exceptions import ClientError

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources


async def test_of_concurrent_create_only_writes_exactly_one_succeeds(
    settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    async def put(i: int) -> bool:
        try:
            await aws.s3.put_object(
                Bucket=settings.output_bucket, Key="race", Body=f"{i}".encode(), IfNoneMatch="*"
            )
        except ClientError as error:
            assert error.response["Error"]["Code"] == "PreconditionFailed"
            return False
        return True

    for _ in range(3):
        await aws.s3.delete_object(Bucket=settings.output_bucket, Key="race")
        won = await asyncio.gather(*(put(i) for i in range(16)))
        assert sum(won) == 1


async def test_of_concurrent_writes_of_one_version_exactly_one_succeeds(
    settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    first = await aws.s3.put_object(Bucket=settings.output_bucket, Key="v", Body=b"0")

    async def replace(i: int) -> bool:
        try:
            await aws.s3.put_object(
                Bucket=settings.output_bucket, Key="v", Body=f"{i}".encode(), IfMatch=first["ETag"]
            )
        except ClientError as error:
            assert error.response["Error"]["Code"] == "PreconditionFailed"
            return False
        return True

    assert sum(await asyncio.gather(*(replace(i) for i in range(1, 17)))) == 1
