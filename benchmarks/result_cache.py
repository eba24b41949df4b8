"""Issue 20's result cache: a course run sent twice, against a fresh `iras serve`.

    .venv/bin/python benchmarks/result_cache.py [--images DIR] [--rounds 3] [--json]

Each round starts `iras serve` (cache on, its defaults otherwise: 0-2 workers, the
embedded AWS), sends the images of `--images` (by default the 100 of
`../shared/data/imagenet-sample-100`) as the 2024-2026 workload generator does (every
one at once, field `inputFile` on `/`), waits for every answer, then sends the same
again, and a third time one image after another. Reported per pass: the wall time, each answer's latency (p50, p95, max), and,
from the gateway's `/metrics`, how many images went to the fleet
(`iras_images_accepted`) and how many the cache answered (`iras_cached_answers`). Every
answer of the later passes must equal the first's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from iras.bench.serve_process import serving

DEFAULT_IMAGES = Path(__file__).resolve().parents[1].parent / "shared/data/imagenet-sample-100"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def counter(metrics: str, name: str) -> float:
    """The sum of every series of the counter `name` in a /metrics text."""
    pattern = re.compile(rf"^{name}_total(?:{{[^}}]*}})? ([0-9.e+-]+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(metrics))


async def one_pass(
    http: httpx.AsyncClient, images: dict[str, bytes], at_once: bool = True
) -> dict[str, Any]:
    """Every image, all at once (`at_once`) or one after another; the figures."""

    async def upload(name: str, blob: bytes) -> tuple[str, float]:
        started = time.perf_counter()
        answer = await http.post("/", files={"inputFile": (name, blob)})
        answer.raise_for_status()
        return answer.text, time.perf_counter() - started

    before = (await http.get("/metrics")).text
    started = time.perf_counter()
    if at_once:
        done = await asyncio.gather(*(upload(name, blob) for name, blob in images.items()))
    else:
        done = [await upload(name, blob) for name, blob in images.items()]
    wall_s = time.perf_counter() - started
    after = (await http.get("/metrics")).text
    latencies = sorted(seconds for _, seconds in done)
    return {
        "answers": [text for text, _ in done],
        "wall_s": wall_s,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] * 1000,
        "max_ms": latencies[-1] * 1000,
        "to_fleet": counter(after, "iras_images_accepted")
        - counter(before, "iras_images_accepted"),
        "cached": counter(after, "iras_cached_answers") - counter(before, "iras_cached_answers"),
    }


async def one_round(images: dict[str, bytes]) -> dict[str, Any]:
    with serving() as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=120) as http:
            first = await one_pass(http, images)
            second = await one_pass(http, images)
            one_by_one = await one_pass(http, images, at_once=False)
    assert second["answers"] == first["answers"], "the cache changed an answer"
    assert one_by_one["answers"] == first["answers"], "the cache changed an answer"
    passes = {"first": first, "second": second, "third, one at a time": one_by_one}
    for figures in passes.values():
        del figures["answers"]
    return passes


def main() -> None:
    os.environ["IRAS_RESULT_CACHE"] = "true"  # `serving` turns it off unless told
    os.environ.setdefault("IRAS_RATE_LIMIT_PER_S", "0")  # one client sends everything
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    args = parser.parse_args()
    images = {
        path.name: path.read_bytes()
        for path in sorted(args.images.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    }
    rounds = []
    for number in range(1, args.rounds + 1):
        rounds.append(asyncio.run(one_round(images)))
        if not args.json:
            for label, figures in rounds[-1].items():
                print(
                    f"round {number}, {label} pass: {len(images)} images in "
                    f"{figures['wall_s']:.2f} s, p50 {figures['p50_ms']:.0f} ms, p95 "
                    f"{figures['p95_ms']:.0f} ms, max {figures['max_ms']:.0f} ms; to the fleet "
                    f"{figures['to_fleet']:.0f}, from the cache {figures['cached']:.0f}",
                    flush=True,
                )
    if args.json:
        print(json.dumps(rounds, indent=2))


if __name__ == "__main__":
    main()
