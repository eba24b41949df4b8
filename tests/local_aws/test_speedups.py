"""The embedded AWS's fixes to moto's SQS answer exactly what moto answers, only sooner."""

from __future__ import annotations

import time

from iras.local_aws import speedups


def test_the_speedups_answer_what_moto_answers() -> None:
    import moto.sqs.models as sqs_models
    from moto.core import DEFAULT_ACCOUNT_ID

    assert speedups.apply()
    backend = sqs_models.SQSBackend("us-east-1", DEFAULT_ACCOUNT_ID)
    queue = backend.create_queue("speedups-test", VisibilityTimeout="45")
    fifo = backend.create_queue(
        "speedups-test.fifo", FifoQueue="true", ContentBasedDeduplication="true"
    )
    for i in range(30):
        backend.send_message("speedups-test", f"body {i}", delay_seconds=5 if i % 7 == 0 else 0)
    received = backend.receive_message("speedups-test", 10, 0, 60)
    assert len(received) == 10

    for q in (queue, fifo):
        assert q.attributes == speedups.ORIGINALS["attributes"].fget(q)
    assert queue.attributes["ApproximateNumberOfMessagesNotVisible"] == 10  # received
    assert queue.attributes["ApproximateNumberOfMessagesDelayed"] == 5
    for message in received:
        assert backend.is_message_valid_based_on_retention_period(
            "speedups-test", message
        ) == speedups.ORIGINALS["retention_check"](backend, "speedups-test", message)
    now_ms = time.time() * 1000
    assert abs(sqs_models.unix_time_millis() - now_ms) < 50
    assert abs(speedups.ORIGINALS["unix_time_millis"]() - now_ms) < 50


def test_a_receive_costs_the_same_at_any_depth() -> None:
    import moto.sqs.models as sqs_models
    from moto.core import DEFAULT_ACCOUNT_ID

    assert speedups.apply()
    backend = sqs_models.SQSBackend("us-east-1", DEFAULT_ACCOUNT_ID)
    seconds = {}
    for depth in (50, 1000):
        name = f"depth-{depth}"
        backend.create_queue(name)
        for i in range(depth):
            backend.send_message(name, f"body {i}")
        started = time.perf_counter()
        for _ in range(5):
            assert len(backend.receive_message(name, 10, 0, 60)) == 10
        seconds[depth] = time.perf_counter() - started
    # Unpatched, a receive of 10 at depth 1000 took ~50x longer than at depth 50.
    assert seconds[1000] < 5 * seconds[50] + 0.05
