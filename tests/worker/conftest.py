"""Fixtures for worker tests: a reply queue."""

from __future__ import annotations

import uuid

import pytest

from iras.aws import AwsClients
from iras.infra.provision import Resources


@pytest.fixture
async def reply_queue(aws: AwsClients, resources: Resources) -> str:
    response = await aws.sqs.create_queue(QueueName=f"iras-replies-{uuid.uuid4().hex[:8]}")
    return str(response["QueueUrl"])
