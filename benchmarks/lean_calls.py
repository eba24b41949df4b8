"""Client CPU of a worker's S3 calls for one image, on the lean path against the embedded AWS.

    .venv/bin/python benchmarks/lean_calls.py [--images 1200] [--at-once 8] [--rounds 3]

Per image, what a worker does on S3: GetObject of a 110 kB image, then two PutObjects
at once (the result JSON and the course's `<name>` object), `--at-once` images at a
time, on uvloop as the worker runs. Prints this process's CPU per image (the embedded
AWS runs in a child process and is not counted) and the wall time per image, for the
lean path and for botocore (`aws_client=botocore`) against the same embedded AWS,
interleaved `--rounds` times, and the ratio of their best rounds: a number that holds
from one machine (or one load) to the next where the absolute ones do not. Needs no
data: the image is random bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from iras import runtime
from iras.aws import AwsClients, open_clients
from iras.cli.provision import provision_with_clients
from iras.config import Settings
from iras.local_aws import dummy_credentials, embedded_aws

IMAGE_BYTES = 110_000
WARMUP_IMAGES = 50


async def one_image(aws: AwsClients, settings: Settings, number: int) -> None:
    await aws.objects.get(settings.input_bucket, "bench/image.jpg")
    await asyncio.gather(
        aws.objects.put(
            settings.output_bucket,
            f"results/{number}.json",
            b"x" * 500,
            content_type="application/json",
        ),
        aws.objects.put(
            settings.output_bucket,
            f"name-{number % 100}",
            b"tabby",
            content_type="text/plain; charset=utf-8",
        ),
    )


async def measure(settings: Settings, images: int, at_once: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per image."""
    async with open_clients(settings) as aws:
        await aws.objects.put(settings.input_bucket, "bench/image.jpg", os.urandom(IMAGE_BYTES))
        for number in range(WARMUP_IMAGES):
            await one_image(aws, settings, number)
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        for first in range(0, images, at_once):
            await asyncio.gather(
                *(one_image(aws, settings, n) for n in range(first, first + at_once))
            )
        cpu_s, wall_s = time.process_time() - cpu_started, time.perf_counter() - wall_started
    return cpu_s / images * 1000, wall_s / images * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--at-once", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(dummy_credentials(os.environ))
    best: dict[str, float] = {}
    with embedded_aws() as endpoint:
        asyncio.run(provision_with_clients(Settings(endpoint_url=endpoint)))
        for round_number in range(1, args.rounds + 1):
            for client in ("lean", "botocore"):
                settings = Settings(endpoint_url=endpoint, aws_client=client)
                cpu_ms, wall_ms = runtime.run(measure(settings, args.images, args.at_once))
                best[client] = min(best.get(client, cpu_ms), cpu_ms)
                print(
                    f"round {round_number}, {client}: {args.images} images, {args.at_once} at a "
                    f"time: {cpu_ms:.2f} ms of client CPU and {wall_ms:.2f} ms wall per image"
                )
    print(
        f"best rounds: lean {best['lean']:.2f} ms, botocore {best['botocore']:.2f} ms of "
        f"client CPU per image; lean/botocore = {best['lean'] / best['botocore']:.3f}"
    )


if __name__ == "__main__":
    main()
