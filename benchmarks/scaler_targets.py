"""The autoscaler's targets against a running `iras serve` (reads ../shared/data only via --images).

    .venv/bin/python benchmarks/scaler_targets.py --url http://127.0.0.1:8000 --images DIR

1. Cold start: with 0 workers, time one POST /upload until its answer.
2. Burst: 100 concurrent uploads; report the largest fleet seen and how long after the
   last answer the fleet is back at 0 (polling /v1/scaler every 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import httpx


async def fleet_size(http: httpx.AsyncClient) -> tuple[int, int]:
    state = (await http.get("/v1/scaler")).json()
    return int(state["workers"] + state["starting"]), int(state["max_workers"])


async def wait_for_zero(http: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    while (await fleet_size(http))[0] > 0:  # noqa: ASYNC110 - polled over HTTP
        await asyncio.sleep(0.1)
    return time.perf_counter() - started


async def run(url: str, images: list[bytes]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=300) as http:
        await wait_for_zero(http)
        started = time.perf_counter()
        response = await http.post("/upload", files={"myfile": ("cold.jpg", images[0])})
        print(
            f"cold start: {response.status_code} {response.text!r} in {time.perf_counter() - started:.2f} s"
        )
        await wait_for_zero(http)

        peak = 0
        done = asyncio.Event()

        async def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, (await fleet_size(http))[0])
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch())
        started = time.perf_counter()
        responses = await asyncio.gather(
            *(
                http.post("/upload", files={"myfile": (f"b{i}.jpg", images[i % len(images)])})
                for i in range(100)
            )
        )
        elapsed_s = time.perf_counter() - started
        done.set()
        await watcher
        back_s = await wait_for_zero(http)
        _, max_workers = await fleet_size(http)
        ok = sum(r.status_code == 200 for r in responses)
        print(
            f"burst of 100: {ok} answered 200 in {elapsed_s:.1f} s; fleet peak {peak} "
            f"(max_workers {max_workers}); back at 0 {back_s:.2f} s after the last answer"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--images", type=Path, required=True)
    args = parser.parse_args()
    images = [p.read_bytes() for p in sorted(args.images.glob("*.JPEG"))[:20]]
    asyncio.run(run(args.url, images))


if __name__ == "__main__":
    main()
