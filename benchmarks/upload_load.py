"""Drive a running gateway with the course protocol and compare answers with a reference.

    .venv/bin/python benchmarks/upload_load.py --url http://127.0.0.1:8000 \
        --images ../shared/data/imagenet-sample-100 --concurrency 10 --reference predict.txt \
        [--pid <pid of iras serve>] [--aws http://127.0.0.1:4566] [--rounds 3]

Sends every image in the folder to POST /upload (field `myfile`) with bounded
concurrency, then prints throughput, latency percentiles and, given `iras predict`'s
output as a reference, how many answers differ. With `--pid` (of `iras serve`) it adds
the CPU per image of each kind of process in its tree (gateway, workers, embedded AWS),
and with `--aws` (the embedded AWS's endpoint) the AWS calls per image, by kind, as
counted by the embedded AWS. `--rounds` repeats the run (the VM is noisy: take the best).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import urllib.request
from collections import Counter
from pathlib import Path

import httpx

from iras.bench.procstat import CpuTracker, read_tree
from iras.local_aws import CALLS_PATH

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


def aws_calls(endpoint: str) -> Counter[str]:
    """The embedded AWS's call counts so far, by `service:Action`."""
    with urllib.request.urlopen(f"{endpoint}{CALLS_PATH}", timeout=10) as answer:
        return Counter(json.load(answer))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--reference", type=Path, help="`iras predict` output (name:label lines)")
    parser.add_argument("--pid", type=int, help="`iras serve`'s pid: CPU per image by process")
    parser.add_argument("--aws", help="the embedded AWS's endpoint: AWS calls per image")
    parser.add_argument("--rounds", type=int, default=1, help="runs in a row (default 1)")
    args = parser.parse_args()

    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in SUFFIXES)
    images = {path.name: path.read_bytes() for path in paths}
    for _ in range(args.rounds):
        run_once(args, images)


def run_once(args: argparse.Namespace, images: dict[str, bytes]) -> None:
    cpu = CpuTracker()
    if args.pid:
        cpu.observe(read_tree(args.pid))
    calls_before = aws_calls(args.aws) if args.aws else Counter()
    started = time.perf_counter()
    answers = asyncio.run(upload_all(args.url, images, args.concurrency))
    elapsed_s = time.perf_counter() - started
    paths = list(images)
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
    if args.pid or args.aws:
        time.sleep(1.5)  # let the last deletes (batched for up to a second) happen
    if args.pid:
        cpu.observe(read_tree(args.pid))
        seconds = cpu.seconds_by_role(os.sysconf("SC_CLK_TCK"))
        per_image = {role: s * 1000 / len(paths) for role, s in seconds.items() if s}
        print("CPU ms/image: " + ", ".join(f"{r} {ms:.1f}" for r, ms in sorted(per_image.items())))
    if args.aws:
        made = aws_calls(args.aws) - calls_before
        per_image_calls = {name: n / len(paths) for name, n in sorted(made.items())}
        print(
            f"AWS calls/image: {sum(per_image_calls.values()):.2f} ("
            + ", ".join(f"{name} {n:.2f}" for name, n in per_image_calls.items())
            + ")"
        )


if __name__ == "__main__":
    main()
