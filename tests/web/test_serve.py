"""`iras serve` as a user runs it: everything starts, answers, and Ctrl-C leaves nothing."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

from iras.aws import open_clients
from iras.config import Settings
from iras.infra.provision import find_queue_url
from iras.messages import name_stem
from iras.model import Classifier, Prediction
from iras.scaler.fleet import Ec2Fleet
from tests.support import image_bytes, wait_until
from tests.web.conftest import ServedProcess


def processes_using(endpoint: str) -> list[int]:
    """Pids of live processes whose environment points at `endpoint` (serve's workers)."""
    marker = f"IRAS_ENDPOINT_URL={endpoint}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) == 0


async def test_serve_answers_and_ctrl_c_stops_everything(served: ServedProcess) -> None:
    assert served.process is not None

    async def observed() -> bool:
        return bool((await served.http.get("/v1/scaler")).json()["timeline"])

    await wait_until(observed, timeout_s=10)
    at_rest = (await served.http.get("/v1/scaler")).json()
    assert at_rest["workers"] + at_rest["starting"] == 0  # nothing runs at rest
    response = await served.http.post("/upload", files={"myfile": ("test_00.jpg", image_bytes())})
    assert response.status_code == 200 and response.text.startswith("test_00:")
    assert (await served.http.get("/")).text.lstrip().lower().startswith("<!doctype html>")
    scaler = (await served.http.get("/v1/scaler")).json()
    assert max(point["workers"] + point["starting"] for point in scaler["timeline"]) >= 1
    # The worker it launched answered: its boot and its rate are measured, the launch is
    # logged with its reason, and the instance-seconds are counted (no minimum locally).
    assert scaler["decisions"][0]["from"] == 0 and scaler["decisions"][0]["to"] >= 1
    assert scaler["decisions"][0]["reason"]
    capacity = scaler["capacity"]
    assert capacity["boot_s"]["configured"] == 3.0 and capacity["boot_s"]["samples"] >= 1
    assert 0 < capacity["boot_s"]["measured"] < 60
    assert capacity["worker_rate_ips"]["measured"] > 0
    assert scaler["images"] == 1 and scaler["instance_seconds"] > 0
    assert scaler["cost_per_1000"] is not None and scaler["cost_per_1000"] > 0
    metrics = (await served.http.get("/metrics")).text
    assert 'iras_worker_boot_seconds{source="measured"}' in metrics
    assert 'iras_worker_rate_images_per_second{source="configured"} 20.0' in metrics
    assert 'iras_scale_events_total{direction="out"}' in metrics

    served.process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(asyncio.to_thread(served.process.wait), 60) == 0
    assert processes_using(served.aws_endpoint) == []
    assert not port_open(served.url) and not port_open(served.aws_endpoint)


async def test_a_burst_grows_the_fleet_to_the_cap_and_back_to_zero(
    served: ServedProcess, classifier: Classifier
) -> None:
    blobs = {f"burst_{i:02d}.png": image_bytes(seed=200 + i, fmt="PNG") for i in range(80)}
    outcomes = classifier.classify(list(blobs.values()))
    expected = sorted(
        f"{name_stem(name)}:{o.label}"
        for name, o in zip(blobs, outcomes, strict=True)
        if isinstance(o, Prediction)
    )
    uploads = asyncio.gather(
        *(served.http.post("/upload", files={"myfile": (n, b)}) for n, b in blobs.items())
    )
    # Mid-burst, a busy worker's instance is terminated (scale-in, spot loss, an operator):
    # its worker hands back what it had not started, and every request is still answered.
    victim = await busy_instance(served)
    async with open_clients(Settings(endpoint_url=served.aws_endpoint)) as aws:
        await aws.ec2.terminate_instances(InstanceIds=[victim])
    responses = await uploads
    assert [r.status_code for r in responses] == [200] * 80
    assert sorted(r.text for r in responses) == expected  # none lost, none wrong

    async def back_to_zero() -> bool:
        state = (await served.http.get("/v1/scaler")).json()
        return bool(state["workers"] + state["starting"] == 0)

    await wait_until(back_to_zero, timeout_s=30)
    state = (await served.http.get("/v1/scaler")).json()
    sizes = [p["workers"] + p["starting"] for p in state["timeline"]]
    assert max(sizes) > 1  # the fleet grew past one worker
    assert max(sizes) <= state["max_workers"]  # and never past the cap
    assert sizes[0] == 0 and sizes[-1] == 0  # 0 -> N -> 0
    metrics = (await served.http.get("/metrics")).text
    assert 'iras_workers{state="running"} 0.0' in metrics
    assert f"iras_workers_max {state['max_workers']}.0" in metrics


async def busy_instance(served: ServedProcess) -> str:
    """The id of a running worker instance while requests are held (waits for one).

    Asked of SQS directly, every 50 ms: the scaler's figures are a second old, and at
    this machine's speed a burst can be over within one of its looks.
    """
    settings = Settings(endpoint_url=served.aws_endpoint)
    async with open_clients(settings) as aws:
        fleet = Ec2Fleet(aws.ec2, settings)
        queue_url = await find_queue_url(aws.sqs, settings.request_queue)
        assert queue_url is not None
        async with asyncio.timeout(60):
            while True:
                _, in_flight = await aws.messages.depth(queue_url)
                running = [i for i in await fleet.instances(("running",))]
                if in_flight > 0 and running:
                    return running[0].id
                await asyncio.sleep(0.05)
