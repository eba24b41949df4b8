"""The controller against the embedded AWS's EC2: launch to the cap, adopt, scale in, warm pool."""

from __future__ import annotations

import base64

import pytest

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.scaler.controller import Scaler
from iras.scaler.fleet import Ec2Fleet, FleetConfigError, next_names


@pytest.fixture
def fleet_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "autoscaler": True,
            "worker_image_id": "ami-0123456789abcdef0",
            "max_workers": 3,
            "backlog_per_worker": 2,
            "scale_in_cooldown_s": 0.0,
        }
    )


def make_scaler(
    settings: Settings, aws: AwsClients, resources: Resources, arriving: int = 0
) -> Scaler:
    return Scaler(
        settings,
        aws.messages,
        resources.request_queue_url,
        Ec2Fleet(aws.ec2, settings),
        runner=None,
        arriving=lambda: arriving,
    )


async def drain(aws: AwsClients, url: str) -> None:
    while messages := await aws.messages.receive(url, max_messages=10):
        await aws.messages.delete_batch(url, [m.receipt_handle for m in messages])


async def live_names(aws: AwsClients, settings: Settings) -> list[str]:
    return [i.name for i in await Ec2Fleet(aws.ec2, settings).instances(("pending", "running"))]


async def test_scales_out_to_the_cap_then_in_to_zero(
    fleet_settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    scaler = make_scaler(fleet_settings, aws, resources)
    assert (await scaler.step()).desired == 0  # at rest
    await aws.messages.send_batch(resources.request_queue_url, [f"r{i}" for i in range(10)])
    decision = await scaler.step()  # 10 queued / 2 per worker = 5, capped at 3
    assert decision.desired == 3
    assert await live_names(aws, fleet_settings) == [f"app-tier-instance-{n}" for n in (1, 2, 3)]
    await drain(aws, resources.request_queue_url)
    assert (await scaler.step()).desired == 3  # one empty look only starts the cooldown
    assert (await scaler.step()).desired == 0  # the next one, after it, scales in
    assert await live_names(aws, fleet_settings) == []
    snapshot = scaler.snapshot()
    assert [p["desired"] for p in snapshot["timeline"]] == [0, 3, 3, 0]
    assert snapshot["max_workers"] == 3 and snapshot["workers"] == 0


async def test_an_upload_arriving_at_zero_starts_a_worker(
    fleet_settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    scaler = make_scaler(fleet_settings, aws, resources, arriving=1)
    assert (await scaler.step()).desired == 1
    assert await live_names(aws, fleet_settings) == ["app-tier-instance-1"]


async def test_a_restarted_controller_adopts_the_fleet(
    fleet_settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    await aws.messages.send_batch(resources.request_queue_url, [f"r{i}" for i in range(4)])
    await make_scaler(fleet_settings, aws, resources).step()  # 4 / 2 = 2 workers
    assert len(await live_names(aws, fleet_settings)) == 2
    await aws.messages.send_batch(resources.request_queue_url, [f"s{i}" for i in range(2)])
    again = make_scaler(fleet_settings, aws, resources)  # a new gateway, no memory
    assert (await again.step()).desired == 3  # 6 / 2 = 3: one more, not three more
    assert await live_names(aws, fleet_settings) == [f"app-tier-instance-{n}" for n in (1, 2, 3)]


async def test_warm_pool_stops_and_starts_instead_of_terminating(
    fleet_settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    warm = fleet_settings.model_copy(update={"warm_pool": True})
    scaler = make_scaler(warm, aws, resources)
    await aws.messages.send_batch(resources.request_queue_url, ["a", "b", "c", "d"])
    await scaler.step()
    fleet = Ec2Fleet(aws.ec2, warm)
    first_ids = sorted(i.id for i in await fleet.instances())
    assert len(first_ids) == 2
    await drain(aws, resources.request_queue_url)
    await scaler.step()  # starts the cooldown
    await scaler.step()  # scales in
    assert {i.state for i in await fleet.instances()} <= {"stopping", "stopped"}
    await aws.messages.send_batch(resources.request_queue_url, ["e", "f", "g", "h"])
    await scaler.step()
    instances = await fleet.instances()
    assert sorted(i.id for i in instances) == first_ids  # the same two, started again
    assert {i.state for i in instances} <= {"pending", "running"}


async def test_launching_without_an_image_is_a_clear_error(
    fleet_settings: Settings, aws: AwsClients
) -> None:
    bare = fleet_settings.model_copy(update={"worker_image_id": None})
    with pytest.raises(FleetConfigError, match="IRAS_WORKER_IMAGE_ID"):
        await Ec2Fleet(aws.ec2, bare).launch(["app-tier-instance-1"])


@pytest.mark.parametrize(
    ("taken", "count", "names"),
    [
        (set(), 2, ["w-1", "w-2"]),
        ({"w-1", "w-3"}, 2, ["w-2", "w-4"]),
        ({"w-2"}, 1, ["w-1"]),
        ({"w-1"}, 0, []),
    ],
)
def test_next_names_fill_the_lowest_gaps(taken: set[str], count: int, names: list[str]) -> None:
    assert next_names("w", taken, count) == names


async def test_launched_instances_boot_the_worker(
    fleet_settings: Settings, aws: AwsClients
) -> None:
    (instance,) = await Ec2Fleet(aws.ec2, fleet_settings).launch(["app-tier-instance-1"])
    attribute = await aws.ec2.describe_instance_attribute(
        InstanceId=instance.id, Attribute="userData"
    )
    script = base64.b64decode(attribute["UserData"]["Value"]).decode()
    assert script.startswith("#cloud-config") and "/etc/iras/worker.env" in script
    assert "IRAS_INSTANCE_ID=auto" in script
    assert f"IRAS_REQUEST_QUEUE={fleet_settings.request_queue}\n" in script
    described = await aws.ec2.describe_instances(InstanceIds=[instance.id])
    tags = {t["Key"]: t["Value"] for t in described["Reservations"][0]["Instances"][0]["Tags"]}
    assert tags == {"Name": "app-tier-instance-1", "iras:role": "app-tier"}
