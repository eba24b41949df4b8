"""The simulator against the real system: one short trace through `iras serve` and
through `iras simulate`'s engine, with the boot time and rate `iras serve` measured.

The trace (evenly spaced, 200 images, 26 s): 5 images/s for 6 s, 30/s for 4 s, 5/s for
6 s, 6 s of quiet, 5/s for 4 s; from an empty fleet, latency target 2 s. It exercises
what the simulator must get right about a fleet: the cold boot the first images wait
for, the last worker kept warm through the trickle, released in the quiet and launched
again for the images after it. The simulator knows nothing of HTTP, S3 or SQS; it must
agree with the real fleet on its peak and its launches, and within the tolerances below
on the worker-seconds the trace took and how long images waited.

The load stays below one worker's rate on purpose: on this 2-core machine, load that
needs two workers also saturates the cores with the gateway's, the embedded AWS's and
this test's own work, which the simulator does not model (measured: p95 5.4 s real
against 1.5 s simulated, at 100 images/s). benchmarks/README.md has a run's figures.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from iras.bench.stats import percentile
from iras.simulation.runs import Scenario, run_policy
from iras.simulation.types import Fleet
from tests.support import image_bytes
from tests.web.conftest import ServedProcess

TARGET_S = 2.0
CAP = 2
PHASES = [(5.0, 6.0), (30.0, 4.0), (5.0, 6.0), (0.0, 6.0), (5.0, 4.0)]  # (per second, seconds)
#: Worker-seconds over the trace: real and simulated within this share of each other.
WORKER_SECONDS_TOLERANCE = 0.35
#: Latency quantiles: within this many seconds (HTTP, S3 and SQS add tens of ms an image,
#: and the first images' wait is one local boot, which varies by a second run to run).
LATENCY_TOLERANCE_S = 1.0


def trace() -> list[float]:
    arrivals, start = [], 0.0
    for rate, seconds in PHASES:
        count = round(rate * seconds)  # a rate of 0: a quiet phase
        arrivals += [start + i / rate for i in range(count)]
        start += seconds
    return arrivals


def launches(points: list[tuple[float, int]]) -> int:
    """How often the fleet grew from 0 (a cold start)."""
    sizes = [size for _, size in sorted(points)]
    return sum(1 for before, after in zip([0, *sizes], sizes, strict=False) if before == 0 < after)


def worker_seconds(points: list[tuple[float, int]], start: float, end: float) -> float:
    """The integral of the fleet's size (a step function given at `points`) over [start, end]."""
    total, size, at = 0.0, 0, start
    for t, count in sorted(points):
        if t > at:
            total += size * (min(t, end) - at)
            at = min(t, end)
        size = count
    return total + size * max(0.0, end - at)


@pytest.mark.slow
@pytest.mark.serve_env(
    IRAS_LATENCY_TARGET_S=str(TARGET_S), IRAS_MAX_WORKERS=str(CAP), IRAS_RATE_LIMIT_PER_S="0"
)
@pytest.mark.timeout(180)
async def test_the_simulator_agrees_with_iras_serve_on_a_short_trace(
    served: ServedProcess,
) -> None:
    arrivals = trace()
    images = [image_bytes(seed=900 + i) for i in range(10)]
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(base_url=served.url, timeout=60, limits=limits) as http:
        started_wall, started = time.time(), time.monotonic()

        async def upload(index: int, at_s: float) -> float:
            await asyncio.sleep(max(0.0, at_s - (time.monotonic() - started)))  # its time
            sent = time.monotonic()
            files = {"myfile": (f"c{index}.jpg", images[index % len(images)])}
            answer = await http.post("/upload", files=files)
            assert answer.status_code == 200, answer.text
            return time.monotonic() - sent

        latencies = await asyncio.gather(*(upload(i, t) for i, t in enumerate(arrivals)))
        ended_wall = time.time()
        scaler = (await http.get("/v1/scaler")).json()

    real_points = [
        (p["t"] - started_wall, p["workers"] + p["starting"]) for p in scaler["timeline"]
    ]
    before = [size for t, size in real_points if t <= 0]
    assert before in ([], [0]) or before[-1] == 0, "the fleet was not empty at the start"
    boot_s = scaler["capacity"]["boot_s"]["measured"]
    rate_ips = scaler["capacity"]["worker_rate_ips"]["measured"]
    assert boot_s is not None and rate_ips is not None, scaler["capacity"]

    fleet = Fleet(boot_s=boot_s, worker_rate_ips=rate_ips, max_workers=CAP, billing_minimum_s=0)
    simulated = run_policy("iras", arrivals, Scenario(fleet, latency_target_s=TARGET_S))
    sim_points = [(t, ready + booting) for t, ready, booting in simulated.timeline]

    end = ended_wall - started_wall
    real_ws = worker_seconds([p for p in real_points if p[0] > 0], 0.0, end)
    sim_ws = worker_seconds(sim_points, 0.0, end)
    real_peak = max(size for t, size in real_points if 0 < t <= end)
    real, sim = sorted(latencies), sorted(simulated.latencies_s)
    real_p50, sim_p50 = percentile(real, 50), percentile(sim, 50)
    real_p95, sim_p95 = percentile(real, 95), percentile(sim, 95)
    print(
        f"\ncalibration: boot {boot_s:.2f} s, rate {rate_ips:.1f}/s per worker; "
        f"peak {real_peak} real / {simulated.peak_workers} sim; cold starts "
        f"{launches(real_points)} / {launches(sim_points)}; worker-seconds "
        f"{real_ws:.1f} / {sim_ws:.1f}; p50 {real_p50:.2f} / {sim_p50:.2f} s; "
        f"p95 {real_p95:.2f} / {sim_p95:.2f} s; max {max(latencies):.2f} / "
        f"{max(simulated.latencies_s):.2f} s"
    )
    assert real_peak == simulated.peak_workers
    assert launches(real_points) == launches(sim_points) == 2  # at the start, after the quiet
    assert abs(real_ws - sim_ws) <= WORKER_SECONDS_TOLERANCE * sim_ws, (real_ws, sim_ws)
    assert abs(real_p50 - sim_p50) <= LATENCY_TOLERANCE_S, (real_p50, sim_p50)
    assert abs(real_p95 - sim_p95) <= LATENCY_TOLERANCE_S, (real_p95, sim_p95)
