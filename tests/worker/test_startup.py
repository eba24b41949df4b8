"""A worker started while AWS is unreachable waits for it, then works; it gives up in time."""

from __future__ import annotations

import asyncio
import logging

import pytest
from botocore.exceptions import BotoCoreError

from iras.aws import AwsClients, open_clients
from iras.cli.worker import run_worker, wait_for_request_queue
from iras.config import Settings
from iras.infra.provision import Resources
from iras.model import Classifier
from tests.support import collect_results, image_bytes, submit, wait_until
from tests.tcp_proxy import tcp_proxy


async def test_a_worker_started_while_aws_is_away_waits_then_answers(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    reply_queue: str,
    classifier: Classifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await submit(aws, settings, resources, {"late.jpg": image_bytes(seed=3)}, reply_queue)
    async with tcp_proxy(str(settings.endpoint_url)) as proxy:
        await proxy.cut()
        via_proxy = settings.model_copy(
            update={"endpoint_url": proxy.url, "aws_max_attempts": 1, "idle_exit_s": 1.5}
        )
        with caplog.at_level(logging.WARNING, logger="iras.cli.worker"):
            run = asyncio.create_task(run_worker(via_proxy, burst=True))

            async def complained() -> bool:
                return any("AWS unreachable" in r.getMessage() for r in caplog.records)

            await wait_until(complained, timeout_s=30)
        assert not run.done()
        await proxy.restore()
        [result] = await collect_results(aws, reply_queue, 1)
        assert await asyncio.wait_for(run, 60) == 0  # answered, then the queue is empty
    assert result.name == "late.jpg"
    assert result.label == classifier.classify([image_bytes(seed=3)])[0].label


async def test_a_worker_gives_up_on_an_aws_that_never_comes(
    settings: Settings, resources: Resources
) -> None:
    async with tcp_proxy(str(settings.endpoint_url)) as proxy:
        await proxy.cut()
        # idle_exit_s below the floor: the floor (10 s) is how long it waits.
        via_proxy = settings.model_copy(
            update={"endpoint_url": proxy.url, "aws_max_attempts": 1, "idle_exit_s": 0.5}
        )
        async with open_clients(via_proxy) as unreachable:
            with pytest.raises(BotoCoreError):
                await asyncio.wait_for(wait_for_request_queue(unreachable, via_proxy), 30)
