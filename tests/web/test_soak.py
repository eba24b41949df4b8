"""Load: thousands of uploads through a real `iras serve`; none lost, none wrong, the
gateway's memory flat.

The issue's figure is 10,000 requests at concurrency 50 (README, "Measured"); the suite
runs `IRAS_SOAK_REQUESTS` of them (2,000 by default) to stay within CI's time, and the
full run is the same test with `IRAS_SOAK_REQUESTS=10000`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

from iras.model import Classifier, Prediction
from tests.support import image_bytes
from tests.web.conftest import ServedProcess

REQUESTS = int(os.environ.get("IRAS_SOAK_REQUESTS", "2000"))
CONCURRENCY = 50
DISTINCT_IMAGES = 20
#: Growth of the gateway's resident memory allowed over the run, after a warm-up that
#: fills its caches and pools. Answered course uploads are not kept (measured: 120 ->
#: 120 MB over 10,000), so a leak of 1 KiB per request would show beyond it at 10,000;
#: at the suite's 2,000 the bound is loose by design.
MAX_RSS_GROWTH_MB = 10


@pytest.mark.slow
# One client at concurrency 50 is a load generator here, not an abuser: on a fast machine
# it outruns the default per-client limit (100/s) and got 429s (tests/web/test_access.py
# covers the limit).
@pytest.mark.serve_env(IRAS_RATE_LIMIT_PER_S="0")
@pytest.mark.timeout(120 + REQUESTS // 15)  # ~35 requests/s here, with room to spare
async def test_thousands_of_uploads_none_lost_none_wrong_memory_flat(
    served: ServedProcess, classifier: Classifier
) -> None:
    assert served.process is not None
    images = [image_bytes(seed=1000 + i) for i in range(DISTINCT_IMAGES)]
    expected = []
    for outcome in classifier.classify(images):
        assert isinstance(outcome, Prediction)
        expected.append(outcome.label)

    async with httpx.AsyncClient(
        base_url=served.url,
        timeout=120,
        limits=httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY),
    ) as http:
        dropped: list[str] = []  # connections lost before an answer, sent again
        await _run(http, images, expected, CONCURRENCY * 2, dropped)  # warm-up: workers, pools
        rss_before = _rss_mb(served.process.pid)
        answers = await _run(http, images, expected, REQUESTS, dropped)
        rss_after = _rss_mb(served.process.pid)

    wrong = [answer for answer in answers if answer is not True]
    assert wrong == [], f"{len(wrong)} of {REQUESTS} wrong or lost, e.g. {wrong[:3]}"
    assert dropped == [], dropped[:3]
    assert rss_after - rss_before < MAX_RSS_GROWTH_MB, (rss_before, rss_after)
    print(
        f"\nsoak: {REQUESTS} requests, {len(dropped)} dropped connections sent again; "
        f"gateway RSS {rss_before:.0f} -> {rss_after:.0f} MB"
    )


async def _run(
    http: httpx.AsyncClient,
    images: list[bytes],
    expected: list[str],
    count: int,
    dropped: list[str],
) -> list[bool | str]:
    """Upload `count` images (cycling) at CONCURRENCY; True per right answer, else what came."""
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> bool | str:
        which = index % len(images)
        async with slots:
            answer = await _post_retrying_dropped_connections(
                http, {"myfile": (f"soak{index}_{which}.jpg", images[which])}, dropped
            )
        wanted = f"soak{index}_{which}:{expected[which]}"
        return True if answer.status_code == 200 and answer.text == wanted else answer.text

    return await asyncio.gather(*(one(index) for index in range(count)))


async def _post_retrying_dropped_connections(
    http: httpx.AsyncClient, files: dict[str, tuple[str, bytes]], dropped: list[str]
) -> httpx.Response:
    """POST /upload, sending again when the connection drops before an answer, as a
    client must, and recording each drop: there must be none. (There were a few in
    thousands while the server closed idle keep-alive connections after 5 s, racing
    clients that reuse them up to 5 s; `iras serve` now keeps them 75 s.)"""
    for _ in range(3):
        try:
            return await http.post("/upload", files=files)
        except httpx.TransportError as error:
            dropped.append(repr(error))
    return await http.post("/upload", files=files)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")
