"""AWS calls per image through the real gateway and worker, counted by the embedded AWS.

On one machine each call costs the embedded AWS milliseconds of CPU, so the count per
image is a performance figure that must not creep up. What is exact is asserted exactly
(S3 calls, request sends); what depends on timing (long polls that return empty, deletes
that wait for company) gets a bound.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import Counter

from iras.config import Settings
from iras.local_aws import CALLS_PATH
from tests.support import image_bytes
from tests.web.conftest import Service


def calls(endpoint: str) -> Counter[str]:
    with urllib.request.urlopen(f"{endpoint}{CALLS_PATH}", timeout=10) as answer:
        counts: dict[str, int] = json.load(answer)
    return Counter(counts)


async def test_calls_per_image_one_at_a_time(service: Service, gateway_settings: Settings) -> None:
    endpoint = gateway_settings.endpoint_url
    assert endpoint is not None
    count = 6
    before, started = calls(endpoint), time.monotonic()
    for i in range(count):
        response = await service.http.post(
            "/upload", files={"myfile": (f"one_{i}.jpg", image_bytes(seed=i))}
        )
        assert response.status_code == 200
    await asyncio.sleep(1.5)  # the gateway's deletes of replies wait up to a second
    made = calls(endpoint) - before
    polls_s = time.monotonic() - started

    assert made["s3:PutObject"] == 3 * count  # the image, the result JSON, the name object
    assert made["s3:GetObject"] == count  # the worker's download
    assert made["sqs:SendMessageBatch"] == 2 * count  # the request, the reply
    # Each request deleted by the worker; replies deleted by the gateway in batches.
    assert count < made["sqs:DeleteMessageBatch"] <= count + 2
    # One receive per image on each side, plus long polls ending empty (1 s here, two
    # receivers per side), plus the gateway's look at its two queues every 2 s (with no
    # autoscaler here; with one, the request queue's depth is the scaler's).
    assert made["sqs:ReceiveMessage"] <= 2 * count + 4 * (polls_s + 1)
    assert made["sqs:GetQueueAttributes"] <= polls_s + 2
    metrics = (await service.http.get("/metrics")).text  # counted by route, as before
    assert f'iras_http_requests_total{{route="/upload",status="200"}} {count}.0' in metrics
    assert set(made) <= {
        "s3:PutObject",
        "s3:GetObject",
        "sqs:SendMessageBatch",
        "sqs:DeleteMessageBatch",
        "sqs:ReceiveMessage",
        "sqs:GetQueueAttributes",
    }


async def test_concurrent_uploads_share_sqs_calls(
    service: Service, gateway_settings: Settings
) -> None:
    endpoint = gateway_settings.endpoint_url
    assert endpoint is not None
    count = 40
    before = calls(endpoint)
    responses = await asyncio.gather(
        *(
            service.http.post("/upload", files={"myfile": (f"many_{i}.jpg", image_bytes(seed=i))})
            for i in range(count)
        )
    )
    assert all(response.status_code == 200 for response in responses)
    await asyncio.sleep(1.5)
    made = calls(endpoint) - before

    assert made["s3:PutObject"] == 3 * count and made["s3:GetObject"] == count
    sqs_calls = sum(n for name, n in made.items() if name.startswith("sqs:"))
    # At one image at a time SQS takes 5 calls per image (see above); together, batches.
    assert sqs_calls <= 2.5 * count, made
