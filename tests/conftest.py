"""Shared fixtures: one real embedded AWS (moto over HTTP) per session, reset per test."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest

from iras.aws import AwsClients, open_clients
from iras.config import Settings
from iras.infra.provision import Resources, provision
from iras.local_aws import dummy_credentials, embedded_aws
from iras.model import Classifier, load_classifier


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """The embedded AWS, with placeholder credentials in this process's environment."""
    os.environ.update(dummy_credentials(os.environ))
    with embedded_aws(port=0) as endpoint:
        yield endpoint


@pytest.fixture
def clean_aws(aws_endpoint: str) -> str:
    """The embedded AWS with no buckets, queues or instances left by earlier tests."""
    request = urllib.request.Request(f"{aws_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    return aws_endpoint


@pytest.fixture
def settings(clean_aws: str) -> Settings:
    """Settings for fast tests: short polls, quick idle exit, small batches."""
    return Settings(
        endpoint_url=clean_aws,
        receive_wait_s=1,
        visibility_timeout_s=30,
        idle_exit_s=1.5,
        batch_size=4,
        batch_wait_ms=50,
        inference_threads=1,
        autoscaler=False,  # scaler tests turn it on, with a fleet they control
    )


@pytest.fixture
async def aws(settings: Settings) -> AsyncIterator[AwsClients]:
    async with open_clients(settings) as clients:
        yield clients


@pytest.fixture
async def resources(settings: Settings, aws: AwsClients) -> Resources:
    return await provision(settings, aws)


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    """The real default model, loaded once for the whole session.

    One torch thread: tests run beside other processes on few cores, where OpenMP threads
    that wait for a busy core make each forward pass many times slower.
    """
    return load_classifier("efficientnet_lite0", threads=1)
