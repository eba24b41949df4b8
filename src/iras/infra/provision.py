"""Create, idempotently, the buckets and queues IRAS needs.

Running it twice changes nothing; running it after a setting changed (a visibility
timeout, a receive count) brings the existing queues in line. What the queues look like
is decided by pure functions (`request_queue_attributes`, ...) so that tests can read the
intent without a server.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from botocore.exceptions import ClientError

from iras.aws import AwsClients, BotocoreClient
from iras.aws.queues import MISSING_QUEUE_CODES
from iras.config import Settings
from iras.messages import REQUEST_MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Resources:
    """Where the provisioned resources are."""

    input_bucket: str
    output_bucket: str
    request_queue_url: str
    dead_letter_queue_url: str


def dead_letter_queue_attributes(settings: Settings) -> dict[str, str]:
    """The dead-letter queue keeps failed requests as long as SQS allows, for inspection."""
    return {"MessageRetentionPeriod": str(14 * 24 * 3600)}


def request_queue_attributes(settings: Settings, dead_letter_queue_arn: str) -> dict[str, str]:
    """Small messages, long polling, and a redrive to the dead-letter queue."""
    return {
        "MaximumMessageSize": str(REQUEST_MAX_MESSAGE_BYTES),
        "VisibilityTimeout": str(settings.visibility_timeout_s),
        "ReceiveMessageWaitTimeSeconds": str(settings.receive_wait_s),
        "MessageRetentionPeriod": str(settings.message_retention_s),
        "RedrivePolicy": json.dumps(
            {
                "deadLetterTargetArn": dead_letter_queue_arn,
                "maxReceiveCount": str(settings.max_receive_count),
            }
        ),
    }


async def provision(settings: Settings, aws: AwsClients) -> Resources:
    """Make sure the buckets and queues exist with the configured attributes."""
    for bucket in dict.fromkeys(
        (settings.input_bucket, settings.output_bucket, settings.records_bucket)
    ):
        await ensure_bucket(aws.s3, bucket, settings.region)
    dlq_url = await ensure_queue(
        aws.sqs, settings.dead_letter_queue, dead_letter_queue_attributes(settings)
    )
    dlq_arn = await queue_arn(aws.sqs, dlq_url)
    request_url = await ensure_queue(
        aws.sqs, settings.request_queue, request_queue_attributes(settings, dlq_arn)
    )
    return Resources(
        input_bucket=settings.input_bucket,
        output_bucket=settings.output_bucket,
        request_queue_url=request_url,
        dead_letter_queue_url=dlq_url,
    )


async def ensure_bucket(s3: BotocoreClient, bucket: str, region: str) -> None:
    """Create `bucket` unless it exists; block public access and encrypt it at rest."""
    try:
        await s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] not in {"404", "NoSuchBucket", "NotFound"}:
            raise
        create: dict[str, object] = {"Bucket": bucket}
        if region != "us-east-1":  # us-east-1 rejects an explicit location constraint
            create["CreateBucketConfiguration"] = {"LocationConstraint": region}
        await s3.create_bucket(**create)
        log.info("created bucket %s", bucket)
    await s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    await s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


async def ensure_queue(sqs: BotocoreClient, name: str, attributes: dict[str, str]) -> str:
    """Create queue `name` with `attributes`, or bring an existing one in line; return its URL."""
    url = await find_queue_url(sqs, name)
    if url is None:
        response = await sqs.create_queue(QueueName=name, Attributes=attributes)
        log.info("created queue %s", name)
        return str(response["QueueUrl"])
    await sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


async def find_queue_url(sqs: BotocoreClient, name: str) -> str | None:
    """The URL of queue `name`, or None when there is no such queue."""
    try:
        response = await sqs.get_queue_url(QueueName=name)
    except ClientError as error:
        if error.response["Error"]["Code"] in MISSING_QUEUE_CODES:
            return None
        raise
    return str(response["QueueUrl"])


async def queue_arn(sqs: BotocoreClient, url: str) -> str:
    response = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(response["Attributes"]["QueueArn"])
