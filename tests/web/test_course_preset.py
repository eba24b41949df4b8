"""`iras serve --course <id>` as the course's checks see it: through boto3, with the
course's names and explicit credentials, while its workload generator's burst runs.

Written from the course's published facts, not from its files: one running
`web-instance`; `app-tier-instance-<n>` instances, none at rest, never more than 15, all
15 during a burst of 100 concurrent requests, none again soon after the last answer;
`<id>-in-bucket` with one object per request, `<id>-out-bucket` with one object per
request keyed by the image's name without extension and holding the label; the queues
`<id>-req-queue` (MaximumMessageSize exactly 1024, asked with the queue's *name* as
QueueUrl, as the course's scripts do) and `<id>-resp-queue`, empty at rest and at the end.
The generator is 100 threads posting one `inputFile` part each to `/` and reading the
text after the first `:`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from pathlib import Path

import pytest

from iras.model import Classifier, Prediction
from tests.course_checks import (
    FleetSampler,
    course_clients,
    keys,
    post_input_file,
    queue_counts,
    running,
)
from tests.support import image_bytes, wait_until
from tests.web.conftest import iras_serve

STUDENT = "1234567890"
REQUESTS = 100
CAP = 15
#: The course polls the fleet from 10 s after the last answer, and gives full marks for
#: 0 within 2 s of that.
BACK_TO_ZERO_S = 12.0


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_the_course_sees_its_topology_its_burst_and_its_fleet_back_at_zero(
    clean_aws: str, tmp_path: Path, classifier: Classifier
) -> None:
    images = {f"test_{n:02d}.jpg": image_bytes(seed=300 + n) for n in range(REQUESTS)}
    labels = {}
    for name, outcome in zip(images, classifier.classify(list(images.values())), strict=True):
        assert isinstance(outcome, Prediction)
        labels[name.removesuffix(".jpg")] = outcome.label
    aws = course_clients(clean_aws)
    ec2, s3, sqs = aws["ec2"], aws["s3"], aws["sqs"]
    request_queue, response_queue = f"{STUDENT}-req-queue", f"{STUDENT}-resp-queue"

    args = ("--course", STUDENT, "--endpoint-url", clean_aws)
    async with iras_serve(tmp_path / "serve.log", *args) as (_, _, url):
        # At rest: the web tier alone, the names the course checks, empty queues.
        assert len(running(ec2, "web-instance")) == 1
        assert running(ec2, "app-tier-instance-*") == []
        for bucket in (f"{STUDENT}-in-bucket", f"{STUDENT}-out-bucket"):
            s3.head_bucket(Bucket=bucket)
        attributes = sqs.get_queue_attributes(QueueUrl=request_queue, AttributeNames=["All"])
        assert attributes["Attributes"]["MaximumMessageSize"] == "1024"
        assert queue_counts(sqs, request_queue) == queue_counts(sqs, response_queue) == (0, 0)

        with FleetSampler(ec2) as fleet, concurrent.futures.ThreadPoolExecutor(REQUESTS) as pool:
            started = time.monotonic()
            answers = await asyncio.gather(
                *(
                    asyncio.wrap_future(pool.submit(post_input_file, url, name, blob))
                    for name, blob in images.items()
                )
            )
            wall_s = time.monotonic() - started
            answered = time.monotonic()

            async def fleet_at_zero() -> bool:
                return bool(fleet.counts) and fleet.counts[-1] == 0

            await wait_until(fleet_at_zero, timeout_s=60)
            back_to_zero_s = time.monotonic() - answered

        # Every answer right, as the generator reads it.
        assert all(status == 200 for status, _ in answers)
        got = dict(text.split(":", 1) for _, text in answers)
        assert got == labels
        # The fleet: the cap reached, never passed, and 0 soon after the last answer.
        assert max(fleet.counts) == CAP, fleet.counts
        assert back_to_zero_s <= BACK_TO_ZERO_S, (back_to_zero_s, fleet.counts[-20:])
        # The buckets hold one object per request; the output bucket, labels by name.
        assert len(keys(s3, f"{STUDENT}-in-bucket")) == REQUESTS
        out = keys(s3, f"{STUDENT}-out-bucket")
        assert sorted(out) == sorted(labels)
        sample = sorted(labels)[0]
        stored = s3.get_object(Bucket=f"{STUDENT}-out-bucket", Key=sample)["Body"].read()
        assert stored.decode() == labels[sample]

        async def queues_empty() -> bool:
            counts = queue_counts(sqs, request_queue), queue_counts(sqs, response_queue)
            return counts == ((0, 0), (0, 0))

        await wait_until(queues_empty, timeout_s=30)
        print(f"course burst: {REQUESTS} in {wall_s:.1f} s, {wall_s / REQUESTS:.3f} s each")
    # Stopped: the web tier's record goes with it.
    assert running(ec2, "web-instance") == []
