"""Fixtures for worker tests: settings without idle exit, and a reply queue."""

from __future__ import annotations

import uuid

import pytest

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources


@pytest.fixture
async def reply_queue(aws: AwsClients, resources: Resources) -> str:
    response = await aws.sqs.create_queue(QueueName=f"iras-replies-{uuid.uuid4().hex[:8]}")
    return str(response["QueueUrl"])


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, with no idle exit: worker tests end a worker by burst mode
    (the queue is empty) or by `stop()`, and only the idle-exit tests ask for one."""
    return settings.model_copy(update={"idle_exit_s": 0})
