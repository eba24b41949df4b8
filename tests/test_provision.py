"""Provisioning: idempotent, and the queues carry the attributes the design needs."""

from __future__ import annotations

import json

import pytest

import iras.cli
from iras.aws import AwsClients
from iras.config import Settings
from iras.provision import provision


async def queue_attributes(aws: AwsClients, url: str) -> dict[str, str]:
    response = await aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    return dict(response["Attributes"])


async def test_provision_creates_buckets_and_queues(settings: Settings, aws: AwsClients) -> None:
    resources = await provision(settings, aws)
    buckets = {b["Name"] for b in (await aws.s3.list_buckets())["Buckets"]}
    assert {settings.input_bucket, settings.output_bucket} <= buckets
    request = await queue_attributes(aws, resources.request_queue_url)
    dead = await queue_attributes(aws, resources.dead_letter_queue_url)
    assert request["MaximumMessageSize"] == "1024"
    assert request["VisibilityTimeout"] == str(settings.visibility_timeout_s)
    assert request["ReceiveMessageWaitTimeSeconds"] == str(settings.receive_wait_s)
    redrive = json.loads(request["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dead["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == settings.max_receive_count
    block = await aws.s3.get_public_access_block(Bucket=settings.input_bucket)
    assert all(block["PublicAccessBlockConfiguration"].values())
    encryption = await aws.s3.get_bucket_encryption(Bucket=settings.output_bucket)
    assert encryption["ServerSideEncryptionConfiguration"]["Rules"]


async def test_provision_is_idempotent_and_applies_changed_settings(
    settings: Settings, aws: AwsClients
) -> None:
    first = await provision(settings, aws)
    await aws.s3.put_object(Bucket=settings.input_bucket, Key="keep-me", Body=b"x")
    again = await provision(settings, aws)
    assert again == first
    changed = settings.model_copy(update={"visibility_timeout_s": 77, "max_receive_count": 5})
    third = await provision(changed, aws)
    assert third == first
    attributes = await queue_attributes(aws, third.request_queue_url)
    assert attributes["VisibilityTimeout"] == "77"
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] in (5, "5")
    queues = (await aws.sqs.list_queues())["QueueUrls"]
    assert len(queues) == 2
    kept = await aws.s3.get_object(Bucket=settings.input_bucket, Key="keep-me")
    assert await kept["Body"].read() == b"x"


def test_provision_command(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert iras.cli.main(["provision", "--endpoint-url", str(settings.endpoint_url)]) == 0
    assert iras.cli.main(["provision", "--endpoint-url", str(settings.endpoint_url)]) == 0
    out = capsys.readouterr().out
    assert out.count("s3://iras-input") == 2 and "iras-requests-dlq" in out
