"""Several gateways' scalers on one fleet: only the lease's holder acts, and it sees the
uploads of all; silent instances are replaced by it alone; launches carry client tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.scaler.controller import Scaler
from iras.scaler.fleet import Ec2Fleet
from iras.scaler.lease import Lease
from iras.scaler.peers import PeerReporter
from iras.web.replies import create_reply_queue, listen_for_replies
from tests.scaler.test_controller import drain, live_names
from tests.support import wait_until


def scaler_of(
    gateway: str,
    settings: Settings,
    aws: AwsClients,
    resources: Resources,
    arriving: list[int] | None = None,
) -> Scaler:
    """Gateway `gateway`'s scaler; `arriving[0]`, if given, is its uploads being stored."""
    lease = Lease(aws.s3, settings.output_bucket, settings.leader_lease_key, gateway, 30.0)
    reporter = PeerReporter(aws.sqs, aws.messages, settings.reply_queue_prefix, gateway)
    return Scaler(
        settings,
        aws.messages,
        resources.request_queue_url,
        Ec2Fleet(aws.ec2, settings),
        runner=None,
        arriving=(lambda: arriving[0]) if arriving is not None else (lambda: 0),
        lease=lease,
        reporter=reporter,
    )


#: Uploads being stored at gateway b, as its submitter would count them.
B_ARRIVING = [0]


@pytest.fixture
async def two(
    fleet_settings: Settings, aws: AwsClients, resources: Resources
) -> AsyncIterator[tuple[Scaler, Scaler]]:
    """Gateway a leads, b follows; a's reply queue brings b's reports, as in a gateway."""
    B_ARRIVING[0] = 0
    a = scaler_of("a", fleet_settings, aws, resources)
    b = scaler_of("b", fleet_settings, aws, resources, arriving=B_ARRIVING)
    assert a.lease is not None and b.lease is not None
    await a.lease.round()
    await b.lease.round()
    url = await create_reply_queue(aws.sqs, f"{fleet_settings.reply_queue_prefix}-a")
    listener = asyncio.create_task(
        listen_for_replies(aws.messages, url, 1, lambda result: None, on_report=a.peer_report)
    )
    try:
        yield a, b
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


async def test_only_the_leader_launches(
    two: tuple[Scaler, Scaler], aws: AwsClients, resources: Resources, fleet_settings: Settings
) -> None:
    a, b = two
    await aws.messages.send_batch(resources.request_queue_url, [f"r{i}" for i in range(6)])
    follower_view = await b.step()
    assert follower_view.desired == 3  # it decides as the leader would...
    assert await live_names(aws, fleet_settings) == []  # ...and does nothing
    await a.step()
    assert len(await live_names(aws, fleet_settings)) == 3
    await b.step()
    assert b.snapshot()["decisions"] == [] and len(a.snapshot()["decisions"]) == 1
    assert (b.snapshot()["leader"], b.snapshot()["leader_id"]) == (False, "a")
    assert (a.snapshot()["leader"], a.snapshot()["leader_id"]) == (True, "a")


async def test_the_leader_keeps_the_fleet_for_another_gateways_trickle_of_uploads(
    two: tuple[Scaler, Scaler], aws: AwsClients, resources: Resources, fleet_settings: Settings
) -> None:
    """The bug: one upload at a time at b, each taken from the queue before a looks, and
    a saw an empty queue twice with no uploads of its own, and scaled to zero under b."""
    a, b = two
    await aws.messages.send_batch(resources.request_queue_url, ["r1", "r2"])
    await a.step()  # one worker for the backlog
    await drain(aws, resources.request_queue_url)  # taken at once: the queue looks empty
    for _ in range(4):
        reports = a.peers.reports
        b.nudge()  # an upload at b
        await b.step()  # b reports it to a

        async def heard(reports: int = reports) -> bool:
            return a.peers.reports > reports

        await wait_until(heard, timeout_s=10)
        assert (await a.step()).desired == 1
    assert await live_names(aws, fleet_settings) == ["app-tier-instance-1"]
    assert a.snapshot()["lease"]["peers"] == ["b"]
    await a.step()  # b went quiet: empty twice, no uploads anywhere
    await a.step()
    assert await live_names(aws, fleet_settings) == []


async def test_an_upload_at_a_follower_wakes_the_leader(
    two: tuple[Scaler, Scaler], aws: AwsClients, resources: Resources
) -> None:
    a, b = two
    await a.step()
    await b.step()
    woken = asyncio.create_task(a._wake.wait())  # what a's loop waits on between looks
    B_ARRIVING[0] = 1  # an upload being stored at b, with the fleet at zero:
    b.nudge()  # it needs a worker now
    await b.step()
    await asyncio.wait_for(woken, 10)


async def test_silent_instances_are_replaced_by_the_leader_only(
    fleet_settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    quick = fleet_settings.model_copy(update={"worker_silent_s": 0.3, "min_workers": 1})
    a, b = (scaler_of(g, quick, aws, resources) for g in ("a", "b"))
    for scaler in (a, b):
        assert scaler.lease is not None
        await scaler.lease.round()
    # Launched by hand, no worker on it: it will never beat.
    (lost,) = await Ec2Fleet(aws.ec2, quick).launch(["app-tier-instance-1"])
    await a.step()
    await b.step()
    await asyncio.sleep(0.4)  # the silence itself: nothing to wait on but time
    await b.step()
    assert await live_names(aws, quick) == ["app-tier-instance-1"] and b.replaced == 0
    await a.step()  # terminates it, and the floor of one launches its replacement
    live = await Ec2Fleet(aws.ec2, quick).instances(("pending", "running"))
    assert len(live) == 1 and live[0].id != lost.id
    assert a.replaced == 1 and a.snapshot()["replaced"] == 1
    reasons = [d["reason"] for d in a.snapshot()["decisions"]]
    assert any("no heartbeat" in reason for reason in reasons)


async def test_each_launch_carries_a_client_token_unique_to_it(
    fleet_settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    sent: list[dict[str, Any]] = []
    aws.ec2.meta.events.register(
        "provide-client-params.ec2.RunInstances", lambda params, **_: sent.append(dict(params))
    )
    scaler = scaler_of("a", fleet_settings, aws, resources)
    assert scaler.lease is not None
    await scaler.lease.round()
    await aws.messages.send_batch(resources.request_queue_url, ["r1", "r2", "r3"])
    await scaler.step()
    tokens = [params["ClientToken"] for params in sent]
    assert len(tokens) == 2 and len(set(tokens)) == 2
    assert all(0 < len(token) <= 64 for token in tokens)
