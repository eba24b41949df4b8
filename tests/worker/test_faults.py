"""Faults at the app tier: a worker that dies without warning loses nothing."""

from __future__ import annotations

import asyncio

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.messages import Result
from tests.support import collect_results, image_bytes, queue_counts, submit
from tests.worker.test_worker_process import start_worker, wait_exit


async def test_a_worker_killed_mid_batch_loses_no_request(
    settings: Settings, aws: AwsClients, resources: Resources, reply_queue: str
) -> None:
    count = 24
    images = {f"k{i}.jpg": image_bytes(seed=i) for i in range(count)}
    requests = await submit(aws, settings, resources, images, reply_queue)
    # A short visibility timeout, so what the killed worker held comes back in seconds.
    short_visibility = {"IRAS_VISIBILITY_TIMEOUT_S": "3", "IRAS_BATCH_SIZE": "4"}
    doomed = start_worker(settings, **short_visibility)
    try:
        answered = await collect_results(aws, reply_queue, 1)
        doomed.kill()  # SIGKILL: no hand-back, no last batch, no goodbye
        assert await wait_exit(doomed) < 0
    finally:
        doomed.kill()
    _, held_by_the_dead = await queue_counts(aws, resources.request_queue_url)
    assert held_by_the_dead > 0  # it really died holding requests
    survivor = start_worker(settings, **short_visibility)
    try:
        answered += await _until_all_answered(aws, reply_queue, answered, count)
    finally:
        survivor.kill()

    assert {r.request_id for r in answered} == {r.request_id for r in requests}
    assert all(r.label for r in answered)


async def _until_all_answered(
    aws: AwsClients, reply_queue: str, answered: list[Result], count: int
) -> list[Result]:
    """Results until every request id is among them: the killed worker may have
    published a result whose request it had not yet deleted, so ids may repeat."""
    more: list[Result] = []
    async with asyncio.timeout(90):
        while len({r.request_id for r in answered + more}) < count:
            more += await collect_results(aws, reply_queue, 1, timeout_s=90)
    return more
