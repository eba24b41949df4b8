"""The fleet as an Auto Scaling group, through the real API of the embedded AWS: sized by
its desired capacity, relaunching what it replaces, sparing instances a busy worker
protects from scale-in."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections import Counter
from types import SimpleNamespace
from typing import cast

import pytest
from botocore.exceptions import ClientError

from iras.aws import AwsClients, open_clients
from iras.config import Settings
from iras.infra.auto_scaling import describe_group, ensure_auto_scaling_group
from iras.infra.launch_template import ensure_launch_template
from iras.local_aws import CALLS_PATH
from iras.scaler.asg_fleet import AsgFleet
from iras.scaler.fleet import ROLE, ROLE_TAG, Ec2Fleet, FleetConfigError, live
from iras.scaler.fleets import make_fleet
from iras.worker.protection import ScaleInProtection, ScheduleOfProtection, leave_group
from tests.support import wait_until


@pytest.fixture
def asg_settings(fleet_settings: Settings) -> Settings:
    return fleet_settings.model_copy(update={"fleet": "asg", "max_workers": 5})


@pytest.fixture
async def fleet(asg_settings: Settings, aws: AwsClients) -> AsgFleet:
    """The fleet of a provisioned group (desired capacity 0)."""
    template = await ensure_launch_template(aws.ec2, asg_settings)
    await ensure_auto_scaling_group(aws.autoscaling, asg_settings, template)
    return AsgFleet(aws.ec2, aws.autoscaling, asg_settings)


async def desired_capacity(aws: AwsClients, settings: Settings) -> int:
    group = await describe_group(aws.autoscaling, settings.asg_name)
    assert group is not None
    return int(group["DesiredCapacity"])


async def role_tagged_live_ids(aws: AwsClients) -> set[str]:
    """Live instances as any reader of EC2 sees them: by the app-tier tag alone."""
    response = await aws.ec2.describe_instances(
        Filters=[
            {"Name": f"tag:{ROLE_TAG}", "Values": [ROLE]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )
    return {i["InstanceId"] for r in response["Reservations"] for i in r["Instances"]}


async def test_a_missing_group_says_to_provision_it(
    asg_settings: Settings, aws: AwsClients
) -> None:
    fleet = AsgFleet(aws.ec2, aws.autoscaling, asg_settings)
    with pytest.raises(FleetConfigError, match=r"iras provision --fleet.*IRAS_FLEET=asg"):
        await fleet.instances()
    with pytest.raises(FleetConfigError, match="iras provision --fleet"):
        await fleet.grow(1, [], "round-1")


async def test_grows_from_zero_to_three_and_shrinks_to_zero(
    fleet: AsgFleet, asg_settings: Settings, aws: AwsClients
) -> None:
    assert await fleet.instances() == []
    launched = await fleet.grow(3, [], "round-1")
    assert len(launched) == 3
    listed = await fleet.instances()
    assert {i.id for i in listed} == {i.id for i in launched} == await role_tagged_live_ids(aws)
    assert all(
        i.name == asg_settings.worker_name_prefix and i.state in ("pending", "running")
        for i in listed
    )
    assert all(i.heartbeat is None and i.launched_at is not None for i in listed)
    assert await desired_capacity(aws, asg_settings) == 3

    more = await fleet.grow(4, listed, "round-2")  # only the new one is returned
    assert len(more) == 1 and more[0].id not in {i.id for i in listed}

    await fleet.shrink(0, live(await fleet.instances()))
    assert live(await fleet.instances()) == []
    assert await role_tagged_live_ids(aws) == set()
    assert await desired_capacity(aws, asg_settings) == 0


async def test_replace_keeps_the_desired_count(
    fleet: AsgFleet, asg_settings: Settings, aws: AwsClients
) -> None:
    first = await fleet.grow(2, [], "round-1")
    broken = first[0]
    await fleet.replace([broken])
    now = live(await fleet.instances())
    assert len(now) == 2 and broken.id not in {i.id for i in now}
    assert await desired_capacity(aws, asg_settings) == 2


class RefusingAutoScaling:
    """An Auto Scaling client whose group exists but refuses every desired capacity, as
    real AWS answers one above MaxSize (the embedded AWS does not check)."""

    def __init__(self, message: str) -> None:
        self.message = message

    async def describe_auto_scaling_groups(self, **_: object) -> dict[str, object]:
        return {"AutoScalingGroups": [{"AutoScalingGroupName": "iras-app-tier"}]}

    async def set_desired_capacity(self, **_: object) -> None:
        error = {"Error": {"Code": "ValidationError", "Message": self.message}}
        raise ClientError(error, "SetDesiredCapacity")


@pytest.mark.parametrize(
    ("message", "says"),
    [
        (
            "New SetDesiredCapacity value 6 is above max value 5 for the AutoScalingGroup.",
            "MaxSize",
        ),
        ("AutoScalingGroup name not found - AutoScalingGroup iras-app-tier not found", "no Auto"),
    ],
)
async def test_a_refused_desired_capacity_is_a_config_error(
    asg_settings: Settings, message: str, says: str
) -> None:
    """A gateway whose IRAS_MAX_WORKERS outgrew the group's MaxSize, or whose group was
    deleted under it, is told to run `iras provision --fleet`."""
    fleet = AsgFleet(object(), RefusingAutoScaling(message), asg_settings)
    with pytest.raises(FleetConfigError, match="iras provision --fleet") as caught:
        await fleet.grow(6, [], "round-1")
    assert says in str(caught.value)


async def test_a_protected_busy_instance_survives_a_scale_in_to_zero(
    fleet: AsgFleet, asg_settings: Settings, aws: AwsClients
) -> None:
    """The worker's protection, set through its own class, holds against SetDesiredCapacity;
    once lifted, the scaler's next ask ends the instance."""
    await fleet.grow(3, [], "round-1")
    busy = live(await fleet.instances())[0]
    clock = SimpleNamespace(now_s=0.0)
    protection = ScaleInProtection(
        aws.autoscaling,
        asg_settings.asg_name,
        busy.id,
        schedule=ScheduleOfProtection(release_after_s=5.0),
        clock=lambda: clock.now_s,
    )
    protection.working()  # the worker received requests
    await protection.settle(holding=True)
    assert protection.protected is True

    await fleet.shrink(0, [])
    assert [i.id for i in live(await fleet.instances())] == [busy.id]

    clock.now_s = 4.0  # done, but within the release delay: still protected
    await protection.settle(holding=False)
    await fleet.shrink(0, [])
    assert [i.id for i in live(await fleet.instances())] == [busy.id]

    clock.now_s = 5.5
    await protection.settle(holding=False)
    assert protection.protected is False
    await fleet.shrink(0, [])
    assert live(await fleet.instances()) == []


async def test_the_protection_loop_protects_on_work_and_releases_when_idle(
    fleet: AsgFleet, asg_settings: Settings, aws: AwsClients
) -> None:
    """`run` as the worker would start it, on the real clock with a short release delay."""
    (instance,) = await fleet.grow(1, [], "round-1")
    holding = SimpleNamespace(now=False)
    protection = ScaleInProtection(
        aws.autoscaling,
        asg_settings.asg_name,
        instance.id,
        schedule=ScheduleOfProtection(release_after_s=0.3),
        interval_s=0.05,
    )

    async def protected_in_aws() -> bool:
        response = await aws.autoscaling.describe_auto_scaling_instances(InstanceIds=[instance.id])
        return bool(response["AutoScalingInstances"][0]["ProtectedFromScaleIn"])

    loop = asyncio.create_task(protection.run(lambda: holding.now))
    try:

        async def first_look_done() -> bool:  # a new worker clears any protection first
            return protection.protected is False

        await wait_until(first_look_done, timeout_s=5)
        holding.now = True
        protection.working()
        await wait_until(protected_in_aws, timeout_s=5)
        holding.now = False

        async def released() -> bool:
            return not await protected_in_aws()

        await wait_until(released, timeout_s=5)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


async def test_protection_failures_never_reach_the_worker(asg_settings: Settings) -> None:
    """AWS away: the call fails, is logged, and waits `retry_s` before the next try."""
    away = asg_settings.model_copy(
        update={"endpoint_url": "http://127.0.0.1:1", "aws_max_attempts": 1}
    )
    async with open_clients(away) as aws:
        protection = ScaleInProtection(
            aws.autoscaling,
            away.asg_name,
            "i-0123456789abcdef0",
            schedule=ScheduleOfProtection(retry_s=60.0),
        )
        protection.working()
        await protection.settle(holding=True)
        assert protection.protected is None
        failed_at_s = protection.schedule.failed_at_s
        assert failed_at_s is not None
        await protection.settle(holding=True)  # within retry_s: no call made
        assert protection.schedule.failed_at_s == failed_at_s


async def test_an_idle_exit_leaves_the_group_without_a_replacement(
    fleet: AsgFleet, asg_settings: Settings, aws: AwsClients
) -> None:
    first, _ = await fleet.grow(2, [], "round-1")
    await leave_group(aws.autoscaling, first.id)
    now = live(await fleet.instances())
    assert len(now) == 1 and first.id not in {i.id for i in now}
    assert await desired_capacity(aws, asg_settings) == 1


async def test_the_embedded_aws_counts_the_groups_calls_by_action(
    fleet: AsgFleet, asg_settings: Settings
) -> None:
    """Counted by action (as EC2's are), and the group looked up once, not per call."""

    def calls() -> Counter[str]:
        url = f"{asg_settings.endpoint_url}{CALLS_PATH}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return Counter(json.load(answer))

    before = calls()
    await fleet.grow(2, [], "round-1")
    await fleet.shrink(1, [])
    made = calls() - before
    assert made["autoscaling:SetDesiredCapacity"] == 2
    assert made["autoscaling:DescribeAutoScalingGroups"] == 1  # the group looked up once


def test_make_fleet_follows_the_fleet_setting(settings: Settings) -> None:
    aws = cast(AwsClients, SimpleNamespace(ec2=object(), autoscaling=object()))
    assert isinstance(make_fleet(aws, settings), Ec2Fleet)
    assert isinstance(make_fleet(aws, settings.model_copy(update={"fleet": "asg"})), AsgFleet)
