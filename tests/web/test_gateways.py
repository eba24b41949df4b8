"""Several gateways on one AWS: one scaler among them, a leader killed, a worker crashed.

Each gateway is a real `iras serve --endpoint-url` process joining the tests' embedded
AWS, with its own autoscaler and local instance runner; EC2 is watched through its API
the whole time, as the course's grader does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.messages import name_stem
from iras.model import Classifier, Prediction
from iras.scaler.fleet import Ec2Fleet, Instance
from tests.support import image_bytes, wait_until
from tests.web.conftest import iras_serve
from tests.web.test_serve import processes_using

pytestmark = pytest.mark.slow

CAP = 2
LEASE_S = 3.0
#: What every gateway of these tests runs with: two workers at most (two cores), a short
#: lease, quick heartbeats, no per-client rate limit (one test client sends everything).
GATEWAY_ENV = {
    "IRAS_MAX_WORKERS": str(CAP),
    "IRAS_LEADER_LEASE_S": str(LEASE_S),
    "IRAS_WORKER_HEARTBEAT_S": "1",
    "IRAS_RATE_LIMIT_PER_S": "0",
}


class FleetWatch:
    """Samples EC2's running app-tier instances every 50 ms while it runs."""

    def __init__(self, aws: AwsClients, settings: Settings) -> None:
        self._fleet = Ec2Fleet(aws.ec2, settings)
        self.most_running = 0
        self.repeated_names: list[str] = []
        self.samples = 0

    async def run(self) -> None:
        while True:
            running = await self._fleet.instances(("pending", "running"))
            self.samples += 1
            self.most_running = max(self.most_running, sum(i.state == "running" for i in running))
            names = [i.name for i in running]
            self.repeated_names += sorted({n for n in names if names.count(n) > 1})
            await asyncio.sleep(0.05)

    async def live(self) -> list[Instance]:
        return await self._fleet.instances(("pending", "running"))


@contextlib.asynccontextmanager
async def watching(aws: AwsClients, settings: Settings) -> AsyncIterator[FleetWatch]:
    watch = FleetWatch(aws, settings)
    task = asyncio.create_task(watch.run())
    try:
        yield watch
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def scaler_of(http: httpx.AsyncClient) -> dict[str, Any]:
    answer: dict[str, Any] = (await http.get("/v1/scaler")).json()
    return answer


async def leaders(*gateways: httpx.AsyncClient) -> list[bool]:
    return [(await scaler_of(http))["leader"] for http in gateways]


def expected_answers(classifier: Classifier, blobs: dict[str, bytes]) -> list[str]:
    outcomes = classifier.classify(list(blobs.values()))
    return sorted(
        f"{name_stem(name)}:{o.label}"
        for name, o in zip(blobs, outcomes, strict=True)
        if isinstance(o, Prediction)
    )


def upload_all(http: httpx.AsyncClient, blobs: dict[str, bytes]) -> asyncio.Future[Any]:
    return asyncio.gather(
        *(http.post("/upload", files={"myfile": (n, b)}) for n, b in blobs.items())
    )


async def test_two_gateways_share_one_fleet_under_a_split_burst(
    tmp_path: Path, settings: Settings, aws: AwsClients, classifier: Classifier
) -> None:
    joined = ("--endpoint-url", settings.endpoint_url or "")
    async with (
        iras_serve(tmp_path / "a.log", *joined, env=GATEWAY_ENV) as (_, a, _),
        iras_serve(tmp_path / "b.log", *joined, env=GATEWAY_ENV) as (_, b, _),
        watching(aws, settings) as watch,
    ):
        await wait_until(lambda: _one_leader(a, b), timeout_s=3 * LEASE_S)
        blobs = {f"split_{i:02d}.png": image_bytes(seed=300 + i, fmt="PNG") for i in range(40)}
        names = list(blobs)
        halves = [{n: blobs[n] for n in names[:20]}, {n: blobs[n] for n in names[20:]}]
        both = await asyncio.gather(upload_all(a, halves[0]), upload_all(b, halves[1]))
        responses = [*both[0], *both[1]]
        assert [r.status_code for r in responses] == [200] * 40
        assert sorted(r.text for r in responses) == expected_answers(classifier, blobs)

        states = [await scaler_of(a), await scaler_of(b)]
        leader = next(s for s in states if s["leader"])
        follower = next(s for s in states if not s["leader"])
        assert follower["leader_id"] == leader["leader_id"]
        assert follower["lease"]["held_for_s"] == 0
        assert leader["lease"]["peers"]  # the follower's uploads reached the leader

        async def back_to_zero() -> bool:
            return not await watch.live()

        await wait_until(back_to_zero, timeout_s=30)
        assert await leaders(a, b) in ([True, False], [False, True])
    assert watch.samples > 20
    assert 1 <= watch.most_running <= CAP  # the cap held at every sample of EC2
    assert watch.repeated_names == []


async def _one_leader(*gateways: httpx.AsyncClient) -> bool:
    return sorted(await leaders(*gateways)) == [False, True]


async def test_a_killed_leader_is_replaced_and_nothing_is_lost(
    tmp_path: Path, settings: Settings, aws: AwsClients, classifier: Classifier
) -> None:
    endpoint = settings.endpoint_url or ""
    joined = ("--endpoint-url", endpoint)
    async with (
        iras_serve(tmp_path / "a.log", *joined, env=GATEWAY_ENV) as (a_process, a, _),
        iras_serve(tmp_path / "b.log", *joined, env=GATEWAY_ENV) as (b_process, b, _),
        watching(aws, settings) as watch,
    ):
        await wait_until(lambda: _one_leader(a, b), timeout_s=3 * LEASE_S)
        a_leads = (await leaders(a, b))[0]
        leader_process = a_process if a_leads else b_process
        follower = b if a_leads else a
        blobs = {f"kill_{i:02d}.png": image_bytes(seed=400 + i, fmt="PNG") for i in range(40)}
        uploads = upload_all(follower, blobs)

        async def working() -> bool:
            return any(i.state == "running" for i in await watch.live())

        await wait_until(working, timeout_s=60, period_s=0.05)
        leader_process.send_signal(signal.SIGKILL)  # its workers, in their own sessions, live on
        killed_s = time.monotonic()

        async def follower_leads() -> bool:
            return bool((await scaler_of(follower))["leader"])

        await wait_until(follower_leads, timeout_s=3 * LEASE_S + 5)
        takeover_s = time.monotonic() - killed_s
        responses = await uploads
        assert [r.status_code for r in responses] == [200] * 40
        assert sorted(r.text for r in responses) == expected_answers(classifier, blobs)

        async def back_to_zero() -> bool:
            return not await watch.live()

        await wait_until(back_to_zero, timeout_s=40)

        # The dead leader's workers ended with their instances: no worker process is left
        # (a gateway's own environment does not name the endpoint: it came as an option).
        async def no_worker_left() -> bool:
            return processes_using(endpoint) == []

        await wait_until(no_worker_left, timeout_s=30)
    # Taken over within the lease's time to live plus a round of reads (~1 s) and a look.
    assert takeover_s < LEASE_S + 3, takeover_s
    assert watch.most_running <= CAP


async def test_an_instance_whose_worker_was_killed_is_replaced(
    tmp_path: Path, settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    endpoint = settings.endpoint_url or ""
    fleet_settings = settings.model_copy(update={"worker_image_id": "ami-0123456789abcdef0"})
    (lost,) = await Ec2Fleet(aws.ec2, fleet_settings).launch(["app-tier-instance-1"])
    worker_env = {
        **{k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"},
        "IRAS_ENDPOINT_URL": endpoint,
        "IRAS_INSTANCE_ID": lost.id,
        "IRAS_WORKER_HEARTBEAT_S": "1",
        "IRAS_INFERENCE_THREADS": "1",
        # Short polls: a poll of the killed worker's that was still open would take (and
        # lose until its visibility timeout) the message the test sends afterwards.
        "IRAS_RECEIVE_WAIT_S": "1",
    }
    # A worker no gateway started (as on EC2, where the instance boots it), beating.
    worker = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
        [sys.executable, "-m", "iras.worker"], env=worker_env, stderr=subprocess.DEVNULL
    )
    try:
        fleet = Ec2Fleet(aws.ec2, settings)

        async def beating() -> bool:
            return any(i.heartbeat for i in await fleet.instances(("running",)))

        await wait_until(beating, timeout_s=60)
        env = {**GATEWAY_ENV, "IRAS_MIN_WORKERS": "1", "IRAS_WORKER_SILENT_S": "4"}
        async with iras_serve(tmp_path / "g.log", "--endpoint-url", endpoint, env=env) as (
            _,
            gateway,
            _,
        ):
            assert [i.id for i in await fleet.instances(("pending", "running"))] == [lost.id]
            worker.send_signal(signal.SIGKILL)  # crashed: its instance runs on, billed
            worker.wait()

            async def repaired() -> bool:  # the lost one gone, a new one with its worker
                live = await fleet.instances(("pending", "running"))
                return len(live) == 1 and live[0].id != lost.id and live[0].heartbeat is not None

            await wait_until(repaired, timeout_s=40)
            state = await scaler_of(gateway)
            assert state["replaced"] == 1
            assert any("no heartbeat" in d["reason"] for d in state["decisions"])
            answer = await gateway.post("/upload", files={"myfile": ("x.png", image_bytes())})
            assert answer.status_code == 200
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
