"""Shared fixtures: one real embedded AWS (moto over HTTP) per session, reset per test.

Tests marked `both_aws_clients` run twice, once with each implementation of the
per-image calls (`aws_client="lean"`, then `"botocore"`): the worker's and the API's end
to end tests, and the AWS calls' own. Every other test runs with the default, "auto".
"""

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

#: The precision workers and `iras serve` run the built-in model in unless told otherwise.
DEFAULT_PRECISION = Settings.model_fields["model_precision"].default

#: The implementations a `both_aws_clients` test runs with, by their `aws_client` setting.
AWS_CLIENTS = ("lean", "botocore")


def pytest_configure(config: pytest.Config) -> None:
    # The tests send a few images again and again to load the fleet, scale it and lose
    # nothing on the way: the result cache would answer them instead. Its own tests turn
    # it on (tests/web/test_result_cache*.py); everything else, here and in the processes
    # the tests start, runs as with IRAS_RESULT_CACHE=false.
    os.environ.setdefault("IRAS_RESULT_CACHE", "false")
    config.addinivalue_line(
        "markers", "both_aws_clients: run once per implementation of the per-image AWS calls"
    )
    config.addinivalue_line(
        "markers", "serve_env(NAME=value, ...): extra environment for the `served` iras serve"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marked = metafunc.definition.get_closest_marker("both_aws_clients") is not None
    if marked and "aws_client" in metafunc.fixturenames:
        metafunc.parametrize("aws_client", AWS_CLIENTS, indirect=True)


@pytest.fixture
def aws_client(request: pytest.FixtureRequest) -> str:
    """The `aws_client` setting of the test's `settings`: "auto", or for a test marked
    `both_aws_clients`, each of `AWS_CLIENTS` in turn."""
    return str(getattr(request, "param", "auto"))


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
def settings(clean_aws: str, aws_client: str) -> Settings:
    """Settings for fast tests: short polls, quick idle exit, small batches."""
    return Settings(
        endpoint_url=clean_aws,
        aws_client=aws_client,
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
    """The real default model, loaded once for the whole session, in the precision the
    workers and `iras serve` run by default (int8), so that their answers are its own.

    One torch thread: tests run beside other processes on few cores, where OpenMP threads
    that wait for a busy core make each forward pass many times slower.
    """
    return load_classifier("efficientnet_lite0", threads=1, precision=DEFAULT_PRECISION)
