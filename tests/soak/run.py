"""A soak with faults: uploads at a fixed concurrency while, one after the other, a worker
is SIGKILLed, the gateway is restarted, and the AWS endpoint is unreachable for seconds.

The gateway (`RestartableGateway`) and its workers reach the embedded AWS through a TCP
proxy (`tests.tcp_proxy`), which is cut for the outage: new connections refused, open
ones reset. Faults are placed by progress (a share of the uploads answered), each once
the one before has healed, so that the load outlasts all three:

1. **A worker SIGKILLed**, once one runs. Its instance's record lives on in EC2; the local
   runner sees the process gone and has the fleet replace the instance. Its requests in
   flight come back after the queue's visibility timeout and are answered then. Healed
   when a worker process that was not there before the kill runs (the autoscaler
   launched a new instance for the one terminated) and the killed one's instance is no
   longer live.
2. **The gateway restarted** (SIGKILL by default: a crash; SIGTERM: a deploy's stop) and
   started again on the same port with the same `IRAS_GATEWAY_ID`. Its connections drop
   (the client sends those uploads again); it finds its reply queue again and drains the
   replies for the dead process's requests. Healed when `/readyz` answers 200.
3. **AWS unreachable** for `outage_s`: uploads get 503 with Retry-After, accepted ones
   are answered once it is back. Healed when `/readyz` answers 200 again.

The report says what the client saw (`tests.soak.client`: lost, wrong, 503s with and
without Retry-After, dropped connections in and out of the restart), the faults' times,
and the resident memory of each gateway process before and after its share of the load.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from iras.aws import open_clients
from iras.config import Settings
from iras.scaler.fleet import LIVE_STATES, Ec2Fleet
from tests.soak.client import Books, RetryingUploader, Upload, client_for
from tests.soak.gateway import RestartableGateway, environment_of, stop_leftover_workers
from tests.tcp_proxy import TcpProxy, tcp_proxy

#: Drops this long after the restarted gateway is ready still count as the restart's:
#: clients back off up to 2 s between tries.
RESTART_DROP_GRACE_S = 3.0
#: Longest a fault may take to heal before the run fails.
HEAL_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """How many uploads, and where the faults fall (shares of the uploads answered)."""

    uploads: int
    concurrency: int = 50
    #: Uploads before the measured ones: workers started, pools and caches filled.
    warmup: int = 100
    kill_worker_at: float = 0.15
    restart_gateway_at: float = 0.40
    cut_aws_at: float = 0.65
    outage_s: float = 5.0
    restart_signal: signal.Signals = signal.SIGKILL
    #: The request queue's, as the gateway is started with (IRAS_VISIBILITY_TIMEOUT_S).
    visibility_timeout_s: float = 60.0


@dataclass
class GatewayMemory:
    """Resident memory of one gateway process, after its warm-up and at its end."""

    pid: int
    before_mb: float = 0.0
    after_mb: float = 0.0


@dataclass
class FaultTimes:
    """When each fault came (seconds from the start of the measured uploads) and how long
    it took to heal."""

    worker_killed_at_s: float | None = None
    worker_replaced_after_s: float | None = None
    gateway_ended_at_s: float | None = None
    gateway_ready_after_s: float | None = None
    aws_cut_at_s: float | None = None
    ready_after_outage_s: float | None = None  # from the end of the outage


@dataclass
class SoakReport:
    uploads: int
    concurrency: int
    wall_s: float
    lost: int
    wrong: int
    lost_examples: list[str]
    attempts: int
    refused_with_retry_after: dict[str, int]
    refused_without_retry_after: dict[str, int]
    restart_retries: int  # attempts dropped by the restart, sent again
    restart_images: int  # images with at least one of those
    other_drops: list[str]  # dropped outside the restart: none expected
    timeouts: int
    #: Images answered no sooner than the visibility timeout after their first attempt:
    #: requests of the killed worker, which came back after it.
    answered_after_visibility_timeout: int
    slowest_s: float
    drained_replies: float  # by the restarted gateway: replies meant for the dead one
    #: Uploads not yet answered when the last fault had healed: above 0, every fault came
    #: under load.
    left_after_faults: int
    faults: FaultTimes
    gateways: list[GatewayMemory] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        refused = sum(self.refused_with_retry_after.values())
        bare = sum(self.refused_without_retry_after.values())
        memory = "; ".join(
            f"gateway {n} (pid {g.pid}) {g.before_mb:.0f} -> {g.after_mb:.0f} MB"
            for n, g in enumerate(self.gateways, 1)
        )
        return (
            f"{self.uploads} uploads at concurrency {self.concurrency} in {self.wall_s:.0f} s: "
            f"lost {self.lost}, wrong {self.wrong}; 503s {refused} with Retry-After "
            f"{self.refused_with_retry_after}, {bare} without; {self.restart_retries} retries "
            f"of {self.restart_images} images dropped by the restart, "
            f"{len(self.other_drops)} other drops, {self.timeouts} timeouts; "
            f"{self.answered_after_visibility_timeout} answered after the visibility timeout, "
            f"slowest {self.slowest_s:.1f} s; {self.drained_replies:.0f} replies drained; "
            f"{self.left_after_faults} uploads left after the faults; "
            f"{memory}; faults {asdict(self.faults)}"
        )


async def soak_with_faults(
    plan: FaultPlan,
    images: Sequence[Upload],
    aws_endpoint: str,
    env: Mapping[str, str],
    log_dir: Path,
) -> SoakReport:
    """Run `plan` with `images` (cycled, each upload under a name of its own) through an
    `iras serve --endpoint-url` gateway (environment `env`) on the embedded AWS at
    `aws_endpoint`; stop everything started before returning."""
    warmup = _numbered(images, plan.warmup, "w")
    measured = _numbered(images, plan.uploads, "s")
    async with tcp_proxy(aws_endpoint) as proxy:
        gateway = RestartableGateway(proxy.url, env, log_dir)
        try:
            await gateway.start()
            async with client_for(gateway.url, plan.concurrency) as http:
                await RetryingUploader(http, plan.concurrency, Books()).upload_all(warmup)
                run = _Run(plan, gateway, proxy, aws_endpoint)
                return await run.measure(http, measured)
        finally:
            await gateway.stop()
            await stop_leftover_workers(proxy.url)


class _Run:
    def __init__(
        self, plan: FaultPlan, gateway: RestartableGateway, proxy: TcpProxy, aws_endpoint: str
    ) -> None:
        self.plan, self.gateway, self.proxy = plan, gateway, proxy
        self.aws_settings = Settings(endpoint_url=aws_endpoint)
        self.books = Books()
        self.times = FaultTimes()
        self.memory = [GatewayMemory(gateway.pid, before_mb=gateway.rss_mb())]
        self.started = 0.0
        self.restart_window = (float("inf"), float("inf"))
        self.left_after_faults = 0

    async def measure(self, http: httpx.AsyncClient, uploads: Sequence[Upload]) -> SoakReport:
        self.started = time.monotonic()
        load = asyncio.create_task(
            RetryingUploader(http, self.plan.concurrency, self.books).upload_all(uploads)
        )
        faults = asyncio.create_task(self._faults())
        try:
            await asyncio.wait({load, faults}, return_when=asyncio.FIRST_EXCEPTION)
            if faults.done() and faults.exception() is not None:
                load.cancel()
            await faults  # raises what went wrong with a fault
            await load
        finally:
            for task in (load, faults):
                task.cancel()
            await asyncio.gather(load, faults, return_exceptions=True)
        wall_s = time.monotonic() - self.started
        self.memory[-1].after_mb = self.gateway.rss_mb()
        drained = _metric((await http.get("/metrics")).text, "iras_drained_results_total")
        return self._report(wall_s, drained)

    async def _faults(self) -> None:
        plan = self.plan
        await self.books.reached(int(plan.uploads * plan.kill_worker_at))
        await self._kill_a_worker()
        await self.books.reached(int(plan.uploads * plan.restart_gateway_at))
        await self._restart_the_gateway()
        await self.books.reached(int(plan.uploads * plan.cut_aws_at))
        await self._cut_aws()
        self.left_after_faults = plan.uploads - self.books.done

    async def _kill_a_worker(self) -> None:
        async with asyncio.timeout(HEAL_TIMEOUT_S):
            while not (workers := self.gateway.worker_pids()):  # noqa: ASYNC110 - other processes
                await asyncio.sleep(0.1)
        victim = workers[0]
        instance_id = environment_of(victim).get("IRAS_INSTANCE_ID")
        assert instance_id, f"worker {victim} has no IRAS_INSTANCE_ID"
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        self.times.worker_killed_at_s = killed - self.started
        async with open_clients(self.aws_settings) as aws, asyncio.timeout(HEAL_TIMEOUT_S):
            fleet = Ec2Fleet(aws.ec2, self.aws_settings)
            while True:
                started = set(self.gateway.worker_pids()) - set(workers)
                live = {i.id for i in await fleet.instances(LIVE_STATES)}
                if started and instance_id not in live:
                    break
                await asyncio.sleep(0.2)
        self.times.worker_replaced_after_s = time.monotonic() - killed

    async def _restart_the_gateway(self) -> None:
        self.memory[-1].after_mb = self.gateway.rss_mb()
        ended = time.monotonic()
        self.times.gateway_ended_at_s = ended - self.started
        self.restart_window = (ended, float("inf"))
        await self.gateway.end(self.plan.restart_signal)
        await self.gateway.start()
        ready = time.monotonic()
        self.restart_window = (ended, ready + RESTART_DROP_GRACE_S)
        self.times.gateway_ready_after_s = ready - ended
        # The new process's "before": once it has answered a warm-up's worth of uploads.
        await self.books.reached(min(self.books.done + self.plan.warmup, self.plan.uploads))
        self.memory.append(GatewayMemory(self.gateway.pid, before_mb=self.gateway.rss_mb()))

    async def _cut_aws(self) -> None:
        self.times.aws_cut_at_s = time.monotonic() - self.started
        await self.proxy.cut()
        await asyncio.sleep(self.plan.outage_s)  # the outage itself: nothing to wait for
        await self.proxy.restore()
        back = time.monotonic()
        await self.gateway.ready()
        self.times.ready_after_outage_s = time.monotonic() - back

    def _report(self, wall_s: float, drained: float) -> SoakReport:
        books = self.books
        first, last = self.restart_window
        in_restart = [d for d in books.drops if first <= d.at <= last]
        outcomes = books.outcomes
        return SoakReport(
            uploads=len(outcomes),
            concurrency=self.plan.concurrency,
            wall_s=round(wall_s, 1),
            lost=len(books.lost),
            wrong=len(books.wrong),
            lost_examples=[f"{o.name}: {o.status} {o.body[:120]}" for o in books.lost[:5]],
            attempts=sum(o.attempts for o in outcomes),
            refused_with_retry_after=dict(books.refused),
            refused_without_retry_after=dict(books.refused_without_retry_after),
            restart_retries=len(in_restart),
            restart_images=len(books.drop_images(first, last)),
            other_drops=[d.error for d in books.drops if not first <= d.at <= last][:20],
            timeouts=books.timeouts,
            answered_after_visibility_timeout=sum(
                o.right and o.elapsed_s >= self.plan.visibility_timeout_s for o in outcomes
            ),
            slowest_s=round(max((o.elapsed_s for o in outcomes), default=0.0), 1),
            drained_replies=drained,
            left_after_faults=self.left_after_faults,
            faults=FaultTimes(**{k: _rounded(v) for k, v in asdict(self.times).items()}),
            gateways=[
                GatewayMemory(m.pid, round(m.before_mb, 1), round(m.after_mb, 1))
                for m in self.memory
            ],
        )


def _numbered(images: Sequence[Upload], count: int, prefix: str) -> list[Upload]:
    """`count` uploads cycling through `images`, each named `<prefix><n>-<name>`."""
    return [
        Upload(f"{prefix}{n}-{image.name}", image.blob, image.label)
        for n, image in ((n, images[n % len(images)]) for n in range(count))
    ]


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
