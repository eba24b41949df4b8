"""Two gateways, one fleet: the cap under split bursts, leader failover, the lease's cost.

    .venv/bin/python benchmarks/gateways.py --images ../shared/data/imagenet-sample-100

Starts an embedded AWS in this process and two `iras serve --endpoint-url` gateways on
it, then runs `--rounds` rounds. Each round sends `--count` uploads split between the
two gateways while EC2 is sampled every 50 ms; in every other round the leading gateway
is SIGKILLed once its fleet is working, and restarted after the round. It reports, per
round: uploads answered, the most running app-tier instances EC2 showed (against the
cap), repeated Name tags, how long the other gateway took to lead after the kill, and how
long after the last answer the fleet was back at 0. Finally, with the fleet at rest, the
S3 calls per minute the two gateways make for the lease (from the embedded AWS's call
counts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from iras.aws import open_clients
from iras.bench.serve_process import free_port
from iras.config import Settings
from iras.local_aws import dummy_credentials, embedded_aws
from iras.scaler.fleet import Ec2Fleet

CAP = 2
LEASE_S = 10.0


class Gateway:
    """One `iras serve --endpoint-url` process."""

    def __init__(self, endpoint: str, log_dir: Path, name: str) -> None:
        self.endpoint, self.log_dir, self.name = endpoint, log_dir, name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **{k: v for k, v in os.environ.items() if k not in {"IRAS_ENDPOINT_URL"}},
            "IRAS_MAX_WORKERS": str(CAP),
            "IRAS_LEADER_LEASE_S": str(LEASE_S),
            "IRAS_RATE_LIMIT_PER_S": "0",
            "IRAS_INFERENCE_THREADS": "1",
            "IRAS_RESULT_CACHE": "false",  # the same images again and again: load for the fleet
        }
        log = (self.log_dir / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "iras",
                "serve",
                "--port",
                str(self.port),
                "--endpoint-url",
                self.endpoint,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    async def ready(self, http: httpx.AsyncClient) -> None:
        async with asyncio.timeout(120):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{self.url}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.2)

    async def scaler(self, http: httpx.AsyncClient) -> dict[str, Any]:
        answer: dict[str, Any] = (await http.get(f"{self.url}/v1/scaler")).json()
        return answer

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()


async def leader_of(http: httpx.AsyncClient, gateways: list[Gateway]) -> Gateway | None:
    states = [await g.scaler(http) for g in gateways]
    leading = [g for g, s in zip(gateways, states, strict=True) if s["leader"]]
    return leading[0] if len(leading) == 1 else None


async def wait_for_leader(http: httpx.AsyncClient, gateways: list[Gateway]) -> Gateway:
    async with asyncio.timeout(3 * LEASE_S + 10):
        while (leader := await leader_of(http, gateways)) is None:  # noqa: ASYNC110 - polled over HTTP
            await asyncio.sleep(0.1)
    return leader


async def one_round(
    http: httpx.AsyncClient,
    settings: Settings,
    gateways: list[Gateway],
    images: list[bytes],
    count: int,
    kill: bool,
) -> dict[str, Any]:
    leader = await wait_for_leader(http, gateways)
    follower = next(g for g in gateways if g is not leader)
    async with open_clients(settings) as aws:
        fleet = Ec2Fleet(aws.ec2, settings)
        most, repeated, samples = 0, 0, 0
        done = asyncio.Event()

        async def watch() -> None:
            nonlocal most, repeated, samples
            while not done.is_set():
                live = await fleet.instances(("pending", "running"))
                samples += 1
                most = max(most, sum(i.state == "running" for i in live))
                names = [i.name for i in live]
                repeated += len(names) - len(set(names))
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch())
        # With a kill, only the follower takes uploads: the leader's own clients would
        # see their connections cut, which says nothing about the fleet.
        targets = [follower] if kill else gateways
        uploads = asyncio.gather(
            *(
                http.post(
                    f"{targets[i % len(targets)].url}/upload",
                    files={"myfile": (f"r{i}.jpg", images[i % len(images)])},
                )
                for i in range(count)
            )
        )
        takeover_s = None
        if kill:
            while not any(i.state == "running" for i in await fleet.instances(("running",))):  # noqa: ASYNC110 - polled over HTTP
                await asyncio.sleep(0.05)
            leader.kill()
            killed = time.perf_counter()
            while not (await follower.scaler(http))["leader"]:  # noqa: ASYNC110 - polled over HTTP
                await asyncio.sleep(0.05)
            takeover_s = time.perf_counter() - killed
        responses = await uploads
        answered_at = time.perf_counter()
        while await fleet.instances(("pending", "running")):  # noqa: ASYNC110 - polled over HTTP
            await asyncio.sleep(0.1)
        back_to_zero_s = time.perf_counter() - answered_at
        done.set()
        await watcher
    if kill:
        leader.start()
        await leader.ready(http)
    return {
        "answered": sum(r.status_code == 200 for r in responses),
        "sent": count,
        "most_running": most,
        "cap": CAP,
        "repeated_names": repeated,
        "samples": samples,
        "leader_killed": kill,
        "takeover_s": None if takeover_s is None else round(takeover_s, 2),
        "back_to_zero_s": round(back_to_zero_s, 2),
    }


def s3_calls(endpoint: str) -> int:
    with urllib.request.urlopen(f"{endpoint}/_iras/calls", timeout=10) as answer:
        counts: dict[str, int] = json.load(answer)
    return sum(n for name, n in counts.items() if name.startswith("s3:"))


async def lease_calls_per_minute(endpoint: str, seconds: float) -> float:
    before = s3_calls(endpoint)
    await asyncio.sleep(seconds)
    return (s3_calls(endpoint) - before) * 60.0 / seconds


def images_in(folder: Path) -> list[bytes]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not files:
        raise SystemExit(f"no images in {folder}")
    return [p.read_bytes() for p in files]


@contextlib.contextmanager
def two_gateways(endpoint: str, log_dir: Path) -> Iterator[list[Gateway]]:
    gateways = [Gateway(endpoint, log_dir, name) for name in ("a", "b")]
    try:
        for gateway in gateways:
            gateway.start()
        yield gateways
    finally:
        for gateway in gateways:
            gateway.stop()


async def main_async(args: argparse.Namespace) -> None:
    images = images_in(args.images)
    os.environ.update(dummy_credentials(os.environ))
    log_dir = Path(tempfile.mkdtemp(prefix="iras-gateways-"))
    with embedded_aws(0) as endpoint, two_gateways(endpoint, log_dir) as gateways:
        settings = Settings(endpoint_url=endpoint)
        async with httpx.AsyncClient(timeout=300) as http:
            for gateway in gateways:
                await gateway.ready(http)
            rows = []
            for n in range(args.rounds):
                row = await one_round(http, settings, gateways, images, args.count, n % 2 == 1)
                rows.append(row)
                print(json.dumps(row), flush=True)
            per_minute = await lease_calls_per_minute(endpoint, args.idle_s)
    print(f"S3 calls per minute at rest, two gateways (the lease): {per_minute:.1f}")
    print(f"gateway logs: {log_dir}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, required=True, help="folder of images")
    parser.add_argument("--rounds", type=int, default=6, help="rounds (every other kills)")
    parser.add_argument("--count", type=int, default=100, help="uploads per round")
    parser.add_argument("--idle-s", type=float, default=60.0, help="rest period measured")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
