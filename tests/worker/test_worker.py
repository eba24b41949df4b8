"""The worker end to end: real model, real SQS and S3 (the embedded AWS over HTTP), with
each implementation of the per-image calls."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.messages import decode_result, name_stem
from iras.model import Classifier, Outcome
from iras.worker.worker import ExitReason, Worker
from tests.support import collect_results, image_bytes, queue_counts, submit, wait_until

pytestmark = pytest.mark.both_aws_clients


def make_worker(
    settings: Settings,
    aws: AwsClients,
    classifier: Classifier | SlowClassifier,
    resources: Resources,
    name: str = "test-worker",
    *,
    burst: bool = False,
) -> Worker:
    return Worker(
        settings,
        aws,
        classifier,
        request_queue_url=resources.request_queue_url,
        name=name,
        burst=burst,
    )


async def test_worker_classifies_like_iras_predict(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    images = {f"img_{i:02d}.jpg": image_bytes(seed=i) for i in range(10)}
    requests = await submit(aws, settings, resources, images, reply_queue)
    worker = make_worker(settings, aws, classifier, resources, burst=True)

    started = time.monotonic()
    run = asyncio.create_task(worker.run())
    results = await collect_results(aws, reply_queue, len(images))
    assert await asyncio.wait_for(run, 30) is ExitReason.EMPTY
    ran_s = time.monotonic() - started

    for name, blob in images.items():
        (tmp_path / name).write_bytes(blob)
    import iras.cli

    capsys.readouterr()
    assert iras.cli.main(["predict", *sorted(str(p) for p in tmp_path.iterdir())]) == 0
    reference = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    by_id = {result.request_id: result for result in results}
    assert sorted(by_id) == sorted(r.request_id for r in requests)
    for request in requests:
        result = by_id[request.request_id]
        assert result.error is None
        assert result.label == reference[name_stem(request.name)]
        assert result.label == result.top[0]["label"]
        assert len(result.top) == settings.top_k
        assert result.job_id == request.job_id and result.name == request.name
        assert result.model == "efficientnet_lite0" and result.worker == "test-worker"
        assert result.timings["inference_ms"] > 0
        assert 0 <= result.timings["worker_up_s"] <= ran_s
    # What the autoscaler learns: images per busy second. Busy time is at most the batches'
    # summed classify calls and, with two at once at most, at least half of it. A call is
    # its decode and forward pass, plus at most the other batch's forward pass while it
    # waits for the model: so the rate lies within twice either side of a batch's own
    # decode-and-forward rate.
    batch_rates = [
        r.timings["batch_size"] / ((r.timings["decode_ms"] + r.timings["inference_ms"]) / 1000.0)
        for r in results
    ]
    rates = [r.timings["worker_rate_ips"] for r in results]
    assert min(batch_rates) * 0.49 <= min(rates) <= max(rates) <= 2.01 * max(batch_rates)
    assert worker.batches_done >= len(images) // settings.batch_size
    assert await queue_counts(aws, resources.request_queue_url) == (0, 0)


async def test_results_are_written_to_the_output_bucket(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
) -> None:
    requests = await submit(aws, settings, resources, {"cat.png": image_bytes(fmt="PNG")}, None)
    worker = make_worker(settings, aws, classifier, resources, burst=True)
    assert await asyncio.wait_for(worker.run(), 30) is ExitReason.EMPTY

    key = f"results/{requests[0].request_id}.json"
    stored = await aws.s3.get_object(Bucket=settings.output_bucket, Key=key)
    result = decode_result(await stored["Body"].read())
    assert result.request_id == requests[0].request_id and result.label
    course_object = await aws.s3.get_object(Bucket=settings.output_bucket, Key="cat")
    assert (await course_object["Body"].read()).decode() == result.label
    assert await queue_counts(aws, resources.request_queue_url) == (0, 0)


async def test_a_reply_queue_that_is_gone_costs_no_result(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A gateway with a random id deletes its reply queue at stop: what it asked for is
    still classified, stored and taken off the request queue, with no more than a warning."""
    images = {f"orphan_{i}.jpg": image_bytes(seed=i) for i in range(3)}
    requests = await submit(aws, settings, resources, images, reply_queue)
    await aws.sqs.delete_queue(QueueUrl=reply_queue)
    worker = make_worker(settings, aws, classifier, resources, burst=True)
    assert await asyncio.wait_for(worker.run(), 30) is ExitReason.EMPTY

    for request in requests:
        key = f"results/{request.request_id}.json"
        stored = await aws.s3.get_object(Bucket=settings.output_bucket, Key=key)
        assert decode_result(await stored["Body"].read()).label
    assert await queue_counts(aws, resources.request_queue_url) == (0, 0)
    assert not [r for r in caplog.records if r.levelno > logging.WARNING]


@pytest.mark.parametrize(
    "bad_bytes",
    [b"", b"not an image at all", image_bytes()[:200]],
    ids=["empty", "text", "truncated-jpeg"],
)
async def test_corrupt_image_gives_an_error_result_and_is_deleted(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
    bad_bytes: bytes,
) -> None:
    images = {"bad.jpg": bad_bytes, "good.jpg": image_bytes(seed=3)}
    await submit(aws, settings, resources, images, reply_queue)
    worker = make_worker(settings, aws, classifier, resources)
    run = asyncio.create_task(worker.run())

    results = {r.name: r for r in await collect_results(aws, reply_queue, 2)}
    assert results["bad.jpg"].error and results["bad.jpg"].label is None
    assert results["good.jpg"].error is None and results["good.jpg"].label
    # The worker is alive and keeps working after the poison input.
    await submit(aws, settings, resources, {"later.jpg": image_bytes(seed=4)}, reply_queue)
    (later,) = await collect_results(aws, reply_queue, 1)
    assert later.name == "later.jpg" and later.label
    worker.stop()  # not burst mode: the queue is empty between the two submissions
    assert await asyncio.wait_for(run, 30) is ExitReason.STOPPED
    assert await queue_counts(aws, resources.request_queue_url) == (0, 0)
    dead = await aws.sqs.get_queue_attributes(
        QueueUrl=resources.dead_letter_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert dead["Attributes"]["ApproximateNumberOfMessages"] == "0"


async def test_missing_input_object_gives_an_error_result(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
) -> None:
    (request,) = await submit(aws, settings, resources, {"gone.jpg": image_bytes()}, reply_queue)
    await aws.s3.delete_object(Bucket=settings.input_bucket, Key=request.key)
    worker = make_worker(settings, aws, classifier, resources, burst=True)
    run = asyncio.create_task(worker.run())
    (result,) = await collect_results(aws, reply_queue, 1)
    assert result.request_id == request.request_id
    assert result.error is not None and "no longer in the input bucket" in result.error
    assert await asyncio.wait_for(run, 30) is ExitReason.EMPTY
    assert await queue_counts(aws, resources.request_queue_url) == (0, 0)


async def test_malformed_message_is_deleted_and_the_worker_goes_on(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
) -> None:
    await aws.sqs.send_message(QueueUrl=resources.request_queue_url, MessageBody="{oops")
    await submit(aws, settings, resources, {"fine.jpg": image_bytes()}, reply_queue)
    worker = make_worker(settings, aws, classifier, resources, burst=True)
    run = asyncio.create_task(worker.run())
    (result,) = await collect_results(aws, reply_queue, 1)
    assert result.label
    assert await asyncio.wait_for(run, 30) is ExitReason.EMPTY
    assert await queue_counts(aws, resources.request_queue_url) == (0, 0)


class SlowClassifier:
    """The real classifier, made slow, as a batch on a busy machine would be."""

    def __init__(self, inner: Classifier, delay_s: float) -> None:
        self._inner, self._delay_s = inner, delay_s
        self.name = inner.name
        self.batches_started = 0
        self.threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._released = threading.Event()

    def classify(self, blobs: Sequence[bytes], top_k: int = 5) -> list[Outcome]:
        with self._lock:  # batches run in threads, two at once
            self.batches_started += 1
            self.threads.append(threading.current_thread())
        self._released.wait(self._delay_s)
        return self._inner.classify(blobs, top_k)

    def release(self) -> None:
        """Let the batches still waiting out their delay go on at once."""
        self._released.set()


async def test_long_batch_extends_visibility_so_no_one_else_takes_it(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
) -> None:
    settings = settings.model_copy(update={"visibility_timeout_s": 2})
    requests = await submit(aws, settings, resources, {"slow.jpg": image_bytes()}, reply_queue)
    slow = SlowClassifier(classifier, delay_s=5.0)
    worker = make_worker(settings, aws, slow, resources, name="slow", burst=True)
    run = asyncio.create_task(worker.run())
    await wait_until(lambda: _in_flight(aws, resources.request_queue_url))
    # Another consumer polls throughout the batch, well past the 2 s visibility timeout.
    stolen = []
    deadline = time.monotonic() + 4.5
    while time.monotonic() < deadline:
        response = await aws.sqs.receive_message(
            QueueUrl=resources.request_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        stolen += response.get("Messages", [])
    assert stolen == []
    (result,) = await collect_results(aws, reply_queue, 1)
    assert result.request_id == requests[0].request_id
    assert await asyncio.wait_for(run, 30) is ExitReason.EMPTY
    # Not even the worker itself received the request a second time.
    assert worker.batches_done == 1
    assert await _drain_results(aws, reply_queue) == []


async def _in_flight(aws: AwsClients, queue_url: str) -> bool:
    return (await queue_counts(aws, queue_url))[1] > 0


async def test_stop_hands_back_unstarted_messages(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
) -> None:
    """Stopping mid-batch: the batch in hand finishes, the rest is visible again at once."""
    settings = settings.model_copy(update={"visibility_timeout_s": 300, "batch_size": 2})
    count = 12
    images = {f"n{i}.jpg": image_bytes(seed=i) for i in range(count)}
    requests = await submit(aws, settings, resources, images, reply_queue)
    slow = SlowClassifier(classifier, delay_s=1.0)
    worker = make_worker(settings, aws, slow, resources, name="stopping")
    run = asyncio.create_task(worker.run())
    first = await collect_results(aws, reply_queue, 1)
    worker.stop()
    assert await asyncio.wait_for(run, 30) is ExitReason.STOPPED
    answered = first + await _drain_results(aws, reply_queue)
    visible, in_flight = await queue_counts(aws, resources.request_queue_url)
    # With a 300 s visibility timeout, only handed-back messages can be visible now.
    assert in_flight == 0
    assert visible + len(answered) == count
    assert 0 < len(answered) < count
    # A second worker finishes the rest; every request is answered exactly once overall.
    rest = asyncio.create_task(make_worker(settings, aws, classifier, resources, burst=True).run())
    answered += await collect_results(aws, reply_queue, count - len(answered))
    assert await asyncio.wait_for(rest, 60) is ExitReason.EMPTY
    assert sorted(r.request_id for r in answered) == sorted(r.request_id for r in requests)


async def test_a_stop_takes_at_most_the_grace_however_long_the_batch_in_hand(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One deadline for the whole stop: the receives in flight (2 s long polls) and the
    batches in hand (a minute each) share the 5 s of `shutdown_grace_s`, where each used
    to wait up to it in turn. What was not started is visible again as the stop ends."""
    grace_s = 5.0
    settings = settings.model_copy(
        update={"shutdown_grace_s": grace_s, "receive_wait_s": 2, "batch_size": 2}
    )
    took_s, counts = await _stop_with_batches_overrunning(
        settings, aws, resources, classifier, reply_queue, count=8, held=8
    )
    # 2 batches of 2 in hand, left running at the deadline; the other 4 handed back.
    assert counts == (4, 4)
    assert grace_s - 0.1 <= took_s < grace_s + 1.0
    assert "batch in hand still running" in caplog.text


async def test_with_no_grace_at_all_unstarted_messages_are_still_handed_back(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hand-back has a reserve of its own beyond the deadline. Here the worker holds
    all it can: 2 batches of 1 classifying, 1 ready, 11 in the inbox (1 + 10), so no
    receive is in flight (a receive cut short could take the messages handed back)."""
    caplog.set_level(logging.INFO, logger="iras.worker.worker")
    settings = settings.model_copy(update={"shutdown_grace_s": 0, "batch_size": 1})
    took_s, counts = await _stop_with_batches_overrunning(
        settings, aws, resources, classifier, reply_queue, count=20, held=2 + 1 + 11
    )
    assert counts == (20 - 2, 2)
    assert took_s < 1.0
    # The call was answered within the stop (not merely sent, then cut off).
    assert "handed back 12 unstarted messages" in caplog.text


async def _stop_with_batches_overrunning(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
    *,
    count: int,
    held: int,
) -> tuple[float, tuple[int, int]]:
    """Queue `count` requests for a worker whose batches take a minute; once it holds
    `held` of them, two batches classifying, stop it. Return how long the stop took and
    the request queue's (visible, in flight) counts as it ends: with a 300 s visibility
    timeout, only handed-back messages can be visible."""
    settings = settings.model_copy(update={"visibility_timeout_s": 300})
    images = {f"o{i}.jpg": image_bytes(seed=i) for i in range(count)}
    await submit(aws, settings, resources, images, reply_queue)
    slow = SlowClassifier(classifier, delay_s=60.0)
    worker = make_worker(settings, aws, slow, resources, name="overrunning")
    run = asyncio.create_task(worker.run())

    async def holding() -> bool:
        in_flight = await queue_counts(aws, resources.request_queue_url) == (count - held, held)
        return in_flight and slow.batches_started == 2

    await wait_until(holding)
    try:
        started = time.monotonic()
        worker.stop()
        assert await asyncio.wait_for(run, 30) is ExitReason.STOPPED
        took_s = time.monotonic() - started
        counts = await queue_counts(aws, resources.request_queue_url)
    finally:
        slow.release()  # the batches left running end soon after, in their threads
    assert worker.batches_done == 0
    # The batches given up on hold up no exit: `asyncio.run` and the interpreter wait
    # for the default executor's threads, never for daemon threads.
    assert slow.threads and all(thread.daemon for thread in slow.threads)
    return took_s, counts


async def test_burst_ends_once_everything_queued_is_answered(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
) -> None:
    """Burst mode ends at an empty receive only when nothing is left in hand: here the
    receives come back empty every second while four 1 s batches run two at a time, and
    the last waits in the inbox behind them (the worker holds at most three batches)."""
    settings = settings.model_copy(update={"batch_size": 1})
    images = {f"b{i}.jpg": image_bytes(seed=i) for i in range(4)}
    requests = await submit(aws, settings, resources, images, reply_queue)
    slow = SlowClassifier(classifier, delay_s=1.0)
    worker = make_worker(settings, aws, slow, resources, burst=True)
    assert await asyncio.wait_for(worker.run(), 30) is ExitReason.EMPTY
    answered = await _drain_results(aws, reply_queue)
    assert sorted(r.request_id for r in answered) == sorted(r.request_id for r in requests)
    assert worker.batches_done == 4
    assert await queue_counts(aws, resources.request_queue_url) == (0, 0)


async def test_burst_on_an_empty_queue_ends_at_once(
    settings: Settings, aws: AwsClients, resources: Resources, classifier: Classifier
) -> None:
    worker = make_worker(settings, aws, classifier, resources, burst=True)
    assert await asyncio.wait_for(worker.run(), 10) is ExitReason.EMPTY
    assert worker.batches_done == 0


async def _drain_results(aws: AwsClients, queue_url: str) -> list:  # type: ignore[type-arg]
    """Whatever results are in the reply queue now."""
    results = []
    while True:
        response = await aws.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        if not messages:
            return results
        results += [decode_result(m["Body"]) for m in messages]
        for message in messages:
            await aws.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_results_json_round_trip_has_contract_fields() -> None:
    from iras.messages import Result, encode_result

    ok = json.loads(encode_result(Result("r", "j", "a.jpg", "m", "w", label="cat", top=[])))
    assert set(ok) >= {"request_id", "job_id", "name", "label", "top", "model", "worker", "timings"}
    assert "error" not in ok
    bad = json.loads(encode_result(Result("r", "j", "a.jpg", "m", "w", error="nope")))
    assert bad["error"] == "nope" and "label" not in bad


async def test_a_message_arriving_while_the_worker_stops_is_not_hidden(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
) -> None:
    """Regression: a stopping worker cancelled its parked long polls after a short grace,
    and a message arriving just then was taken by the cancelled call and stayed hidden for
    a whole visibility timeout (a 60 s cold start in `iras serve`)."""
    settings = settings.model_copy(update={"receive_wait_s": 3, "visibility_timeout_s": 300})
    worker = make_worker(settings, aws, classifier, resources)
    run = asyncio.create_task(worker.run())
    await wait_until(lambda: _polling(aws, resources.request_queue_url))
    worker.stop()
    # Deliberately later than the old 1 s grace, within the 3 s long poll.
    await asyncio.sleep(1.5)
    await submit(aws, settings, resources, {"late.jpg": image_bytes()}, reply_queue)
    assert await asyncio.wait_for(run, 30) is ExitReason.STOPPED

    async def visible_again() -> bool:
        return await queue_counts(aws, resources.request_queue_url) == (1, 0)

    await wait_until(visible_again, timeout_s=5)


async def _polling(aws: AwsClients, queue_url: str) -> bool:
    """The queue is empty and nothing is in flight: a started worker is parked in long polls."""
    return await queue_counts(aws, queue_url) == (0, 0)


async def test_a_stop_ends_the_spans_of_batches_it_does_not_publish(
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    classifier: Classifier,
    reply_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Traced, the stop of the test above leaves 2 batches classifying (given up on at
    the deadline) and 1 downloaded and not started (handed back): their `iras.batch`
    spans end with the stop, saying why, instead of never reaching the exporter."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from iras.worker import worker as worker_module

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    started: list[object] = []

    def recorded_batch_span(contexts: object) -> object:
        span = provider.get_tracer("test").start_span("iras.batch")
        started.append(span)
        return span

    monkeypatch.setattr(worker_module, "start_batch_span", recorded_batch_span)
    settings = settings.model_copy(update={"shutdown_grace_s": 0, "batch_size": 1})
    await _stop_with_batches_overrunning(
        settings, aws, resources, classifier, reply_queue, count=20, held=2 + 1 + 11
    )

    ended = exported.get_finished_spans()
    assert len(started) >= 3 and len(ended) == len(started)
    reasons = sorted(str(span.attributes.get("iras.batch.unfinished")) for span in ended)
    assert reasons.count("handed back at a stop") >= 1
    assert reasons.count("left running at the stop's deadline") == 2
    provider.shutdown()
