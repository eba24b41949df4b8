"""A stopping worker and the dead-letter queue: what it holds that was received before
(handed back by another stopping worker) it classifies instead of handing it back again,
so a scale-in never dead-letters a request that was never tried."""

from __future__ import annotations

import asyncio
import logging

import pytest

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.model import Classifier
from iras.worker.receiving import Received
from iras.worker.worker import ExitReason, split_last_chance
from tests.support import collect_results, image_bytes, queue_counts, submit
from tests.worker.test_worker import SlowClassifier, make_worker


def received(receive_count: int) -> Received:
    return Received(f"h{receive_count}", "m", None, None, receive_count, 0.0)


def test_messages_received_before_are_kept_the_first_timers_handed_back() -> None:
    messages = [received(n) for n in (1, 2, 3, 4)]
    kept, handed_back = split_last_chance(messages, max_receive_count=3)
    assert [m.receive_count for m in kept] == [2, 3, 4]
    assert [m.receive_count for m in handed_back] == [1]
    # With one receive allowed, every message is on its last: all kept.
    assert split_last_chance([received(1)], max_receive_count=1)[1] == []


async def receive_each_twice(aws: AwsClients, queue_url: str, count: int) -> None:
    """Receive every message twice, letting it go after each round, as two stopping
    workers' polls would: each is then on its last receive (of 3) when the worker takes
    it. Within a round a received message stays hidden, so none is received twice."""
    for _ in range(2):
        handles: dict[str, str] = {}
        async with asyncio.timeout(30):
            while len(handles) < count:
                answer = await aws.sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=60,
                    WaitTimeSeconds=1,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                )
                for message in answer.get("Messages", ()):
                    handles[message["MessageId"]] = message["ReceiptHandle"]
        await aws.messages.change_visibility_batch(queue_url, list(handles.values()), 0)


async def test_a_stopping_worker_classifies_what_is_on_its_last_receive(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: handed back, such messages went to the dead-letter queue at their next
    receive (the 504s of a burst that came as a scale-in stopped 13 workers)."""
    caplog.set_level(logging.INFO, logger="iras.worker.worker")
    settings = settings.model_copy(update={"visibility_timeout_s": 300, "batch_size": 2})
    count = 12
    images = {f"n{i}.jpg": image_bytes(seed=i) for i in range(count)}
    requests = await submit(aws, settings, resources, images, reply_queue)
    await receive_each_twice(aws, resources.request_queue_url, count)

    worker = make_worker(settings, aws, SlowClassifier(classifier, delay_s=0.5), resources)
    run = asyncio.create_task(worker.run())
    first = await collect_results(aws, reply_queue, 1)
    worker.stop()
    assert await asyncio.wait_for(run, 30) is ExitReason.STOPPED
    answered = first + await collect_results(aws, reply_queue, count - len(first), timeout_s=30)

    assert sorted(r.request_id for r in answered) == sorted(r.request_id for r in requests)
    assert "received before, before stopping" in caplog.text
    assert await queue_counts(aws, resources.request_queue_url) == (0, 0)
    assert await queue_counts(aws, resources.dead_letter_queue_url) == (0, 0)
