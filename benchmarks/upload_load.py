"""Drive a running gateway with the course protocol and compare answers with a reference.

    .venv/bin/python benchmarks/upload_load.py --url http://127.0.0.1:8000 \
        --images ../shared/data/imagenet-sample-100 --concurrency 10 --reference predict.txt

Sends every image in the folder to POST /upload (field `myfile`) with bounded
concurrency, then prints throughput, latency percentiles and, given `iras predict`'s
output as a reference, how many answers differ. (The full benchmark harness, `iras
bench`, comes with the performance work; this script reads ../shared/data.)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

import httpx

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


async def upload_all(
    url: str, images: dict[str, bytes], concurrency: int
) -> list[tuple[str, float]]:
    limit = asyncio.Semaphore(concurrency)

    async def one(client: httpx.AsyncClient, name: str, blob: bytes) -> tuple[str, float]:
        async with limit:
            started = time.perf_counter()
            response = await client.post("/upload", files={"myfile": (name, blob)})
            response.raise_for_status()
            return response.text, time.perf_counter() - started

    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        return await asyncio.gather(*(one(client, name, blob) for name, blob in images.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--reference", type=Path, help="`iras predict` output (name:label lines)")
    args = parser.parse_args()

    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in SUFFIXES)
    images = {path.name: path.read_bytes() for path in paths}
    started = time.perf_counter()
    answers = asyncio.run(upload_all(args.url, images, args.concurrency))
    elapsed_s = time.perf_counter() - started
    latencies_ms = sorted(seconds * 1000 for _, seconds in answers)
    quantiles = statistics.quantiles(latencies_ms, n=100)
    print(
        f"{len(paths)} images at concurrency {args.concurrency}: {elapsed_s:.1f} s, "
        f"{len(paths) / elapsed_s:.1f} images/s; latency p50 {quantiles[49]:.0f} ms, "
        f"p95 {quantiles[94]:.0f} ms, max {latencies_ms[-1]:.0f} ms"
    )
    if args.reference:
        expected = set(args.reference.read_text().splitlines())
        differing = [text for text, _ in answers if text not in expected]
        print(f"answers differing from the reference: {len(differing)} {differing[:5]}")


if __name__ == "__main__":
    main()
