"""Drive a gateway with images at a fixed concurrency; watch its CPU and fleet meanwhile.

`concurrency` senders share one iterator over the images, so exactly that many requests
are in flight until the last ones (a closed loop, as the course's workload generator and
most users behave). Each request's latency is measured from just before it is sent to
its answer, and kept with the result's timings when the answer carries them. While they
run, the serve process tree's CPU is sampled every `CPU_PERIOD_S` (see `procstat` for why
not only before and after); `/v1/scaler`'s timeline is read once at the end (it keeps
ten minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from iras.bench.procstat import CpuTracker, read_tree
from iras.bench.report import Outcome
from iras.client.gateway import TRANSPORT_ERRORS, Send, describe_transport_error
from iras.client.progress import Bar, progress_bar

#: How often the serve tree's CPU is sampled during a run.
CPU_PERIOD_S = 0.5
#: Wait after the last answer before the final CPU sample: the worker deletes a request
#: from the queue after replying, and that call is part of the image's cost.
SETTLE_S = 0.5


@dataclass
class LoadRun:
    outcomes: list[Outcome]
    wall_s: float
    started_t: float  # wall clock (time.time()) at the first request
    cpu_s: dict[str, float] | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def drive(
    http: aiohttp.ClientSession,
    items: Sequence[tuple[str, bytes]],
    send: Send,
    *,
    concurrency: int,
    pid: int | None = None,
    warmup: Sequence[tuple[str, bytes]] = (),
    show_progress: bool = False,
) -> LoadRun:
    """Send every (name, bytes) item through `send`; measure CPU of `pid`'s tree if given.

    The `warmup` items go first, at the same concurrency, and count for nothing: they
    bring a fleet that rests at zero workers up before the measured run.
    """
    if warmup:
        await send_all(http, warmup, send, concurrency)
    tracker = CpuTracker() if pid is not None else None
    sampler: asyncio.Task[None] | None = None
    if tracker is not None and pid is not None:
        tracker.observe(await asyncio.to_thread(read_tree, pid))
        sampler = asyncio.create_task(_sample_cpu(tracker, pid))
    started_t = time.time()
    with progress_bar(len(items), enabled=show_progress, description="sending") as bar:
        outcomes, wall_s = await send_all(http, items, send, concurrency, bar)
    run = LoadRun(outcomes, wall_s, started_t)
    if tracker is not None and sampler is not None and pid is not None:
        await asyncio.sleep(SETTLE_S)
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        try:
            tracker.observe(await asyncio.to_thread(read_tree, pid))
        except ProcessLookupError:
            run.notes.append(f"process {pid} ended during the run: CPU counted until then")
        run.cpu_s = tracker.seconds_by_role(os.sysconf("SC_CLK_TCK"))
    run.timeline, note = await scaler_timeline(http)
    if note:
        run.notes.append(note)
    return run


async def send_all(
    http: aiohttp.ClientSession,
    items: Sequence[tuple[str, bytes]],
    send: Send,
    concurrency: int,
    bar: Bar | None = None,
) -> tuple[list[Outcome], float]:
    """The outcome of every item, in order, and the wall time from first send to last answer."""
    outcomes: list[Outcome | None] = [None] * len(items)
    pending = iter(enumerate(items))
    started = time.perf_counter()

    async def sender() -> None:
        for position, (name, blob) in pending:
            sent = time.perf_counter()
            answer = await send(http, name, blob)
            done = time.perf_counter()
            outcomes[position] = Outcome(
                name, done - started, done - sent, answer.label, answer.error, answer.timings
            )
            if bar is not None:
                bar.advance(failed=not answer.ok)

    await asyncio.gather(*(sender() for _ in range(min(concurrency, len(items)))))
    return [o for o in outcomes if o is not None], time.perf_counter() - started


async def _sample_cpu(tracker: CpuTracker, pid: int) -> None:
    while True:
        await asyncio.sleep(CPU_PERIOD_S)
        with contextlib.suppress(ProcessLookupError):
            tracker.observe(await asyncio.to_thread(read_tree, pid))


async def scaler_timeline(http: aiohttp.ClientSession) -> tuple[list[dict[str, Any]], str | None]:
    """`GET /v1/scaler`'s timeline, or an empty one and why."""
    try:
        async with http.get("v1/scaler") as response:
            status, body = response.status, await response.read()
    except TRANSPORT_ERRORS as error:
        return [], f"no fleet figures: GET /v1/scaler failed ({describe_transport_error(error)})"
    if status != 200:
        return [], f"no fleet figures: GET /v1/scaler answered {status}"
    try:
        timeline = json.loads(body).get("timeline", [])
    except (ValueError, AttributeError):
        return [], f"no fleet figures: GET /v1/scaler answered {body[:200]!r}"
    return list(timeline), None
