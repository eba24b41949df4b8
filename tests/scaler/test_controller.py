"""The controller against the embedded AWS's EC2: launch to the cap, adopt, scale in, warm pool."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.scaler.controller import Scaler
from iras.scaler.fleet import Ec2Fleet, FleetConfigError, next_names


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


# --- what the controller learns from results, and what it keeps of its decisions -------


def a_result(worker: str, **timings: float) -> dict[str, Any]:
    return {"request_id": "r", "job_id": "j", "worker": worker, "label": "x", "timings": timings}


async def test_the_first_result_of_a_launch_measures_the_boot(
    fleet_settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    scaler = make_scaler(fleet_settings, aws, resources)
    await aws.messages.send_batch(resources.request_queue_url, ["a", "b", "c"])  # 2 workers
    before_s = time.monotonic()
    await scaler.step()
    one, two = await Ec2Fleet(aws.ec2, fleet_settings).instances()
    capacity = scaler.snapshot()["capacity"]
    assert capacity["boot_s"] == {"configured": 40.0, "measured": None, "samples": 0}
    # Worker 1 says it has been up for longer than since the launch: a result of an
    # earlier worker of that name, no boot sample. Then each says it just became ready:
    # each boot is the time from the launch to now. Worker 1 is named as locally (its
    # instance's name), worker 2 as on AWS (its instance id).
    scaler.observe_result(a_result(one.name, worker_up_s=3600.0))
    assert scaler.capacity.boot.samples == 0
    scaler.observe_result(a_result(one.name, worker_rate_ips=30.0, worker_up_s=0.0))
    scaler.observe_result(a_result(two.id, worker_rate_ips=10.0, worker_up_s=0.0))
    since_s = time.monotonic() - before_s
    capacity = scaler.snapshot()["capacity"]
    assert capacity["boot_s"]["samples"] == 2
    assert 0 <= capacity["boot_s"]["measured"] <= since_s
    assert capacity["worker_rate_ips"] == {"configured": 20.0, "measured": 20.0, "samples": 2}
    # An instance adopted after a restart gives throughput but no boot sample.
    again = make_scaler(fleet_settings, aws, resources)
    await again.step()
    again.observe_result(a_result(one.name, worker_rate_ips=25.0, worker_up_s=3.0))
    assert again.capacity.boot.samples == 0 and again.capacity.rate.measured == 25.0


async def test_the_ages_of_live_instances_reach_the_policy(
    fleet_settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    scaler = make_scaler(fleet_settings, aws, resources)
    await aws.messages.send_batch(resources.request_queue_url, ["a", "b", "c"])
    before_s = time.monotonic()
    await scaler.step()  # launches two
    await scaler.step()
    since_s = time.monotonic() - before_s
    observation = scaler.last_observation
    assert observation is not None and len(observation.ages_s) == 2
    assert all(0 < age_s <= since_s for age_s in observation.ages_s)
    assert observation.worker_rate_ips == 20.0 and observation.boot_s == 40.0  # the guesses
    # A gateway restarted finds them, and reads their ages from EC2's LaunchTime (to the
    # second, on AWS's clock).
    wall_before_s = time.time()
    again = make_scaler(fleet_settings, aws, resources)
    await again.step()
    assert again.last_observation is not None and len(again.last_observation.ages_s) == 2
    # EC2's LaunchTime is to the second (truncated): up to 1 s older than the launch.
    since_s = time.monotonic() - before_s
    assert all(0 <= age_s <= since_s + 1.0 for age_s in again.last_observation.ages_s)
    for instance in await Ec2Fleet(aws.ec2, fleet_settings).instances():
        assert instance.launched_at is not None
        assert wall_before_s - since_s - 1.0 <= instance.launched_at <= time.time()


async def test_scale_in_releases_the_instance_not_yet_answering_first(
    fleet_settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    """Starting, to scale-in, is pending or still booting (no result yet): here the
    older instance, though the newest would have gone before `pick_released`."""
    settings = fleet_settings.model_copy(update={"min_workers": 1, "billing_minimum_s": 0.0})
    directions: list[str] = []
    scaler = Scaler(
        settings,
        aws.messages,
        resources.request_queue_url,
        Ec2Fleet(aws.ec2, settings),
        runner=None,
        on_scale=directions.append,
    )
    await scaler.step()  # the floor: instance-1
    await aws.messages.send_batch(resources.request_queue_url, ["a", "b", "c", "d"])
    await scaler.step()  # 4 / 2: instance-2 too
    assert await live_names(aws, settings) == ["app-tier-instance-1", "app-tier-instance-2"]
    scaler.observe_result(a_result("app-tier-instance-2", worker_rate_ips=9.0, worker_up_s=0.0))
    await drain(aws, resources.request_queue_url)
    await scaler.step()  # the cooldown begins
    await scaler.step()  # back to the floor: instance-1, still silent, goes
    assert await live_names(aws, settings) == ["app-tier-instance-2"]

    assert directions == ["out", "out", "in"]
    snapshot = scaler.snapshot()
    assert [(d["from"], d["to"]) for d in snapshot["decisions"]] == [(0, 1), (1, 2), (2, 1)]
    assert all(d["reason"] and isinstance(d["figures"], dict) for d in snapshot["decisions"])
    assert snapshot["last_decision"]["reason"] == snapshot["decisions"][-1]["reason"]
    await scaler.step()  # no change: the log stays, the latest decision moves on
    assert len(scaler.snapshot()["decisions"]) == 3
    assert scaler.snapshot()["last_decision"]["reason"] != snapshot["decisions"][-1]["reason"]


async def test_the_bill_so_far_and_per_1000_images(
    fleet_settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    settings = fleet_settings.model_copy(update={"billing_minimum_s": 60.0})
    scaler = make_scaler(settings, aws, resources)
    before = scaler.snapshot()
    assert before["instance_seconds"] == 0 and before["cost"] == 0
    assert before["cost_per_1000"] is None and before["images"] == 0
    assert before["price_per_hour"] == 0.0416  # t3.medium, on demand in us-east-1
    assert before["last_decision"] is None and before["decisions"] == []
    await aws.messages.send_batch(resources.request_queue_url, ["a", "b", "c"])
    await scaler.step()  # two instances: 2 x the 60 s minimum, owed from the launch
    for _ in range(4):
        scaler.observe_result(a_result("app-tier-instance-1", worker_rate_ips=5.0))
    snapshot = scaler.snapshot()
    assert snapshot["instance_seconds"] == 120.0 and snapshot["images"] == 4
    assert snapshot["cost"] == pytest.approx(120 * 0.0416 / 3600)
    assert snapshot["cost_per_1000"] == pytest.approx(snapshot["cost"] * 1000 / 4)
    unpriced = make_scaler(
        settings.model_copy(update={"worker_instance_type": "x9.huge"}), aws, resources
    )
    assert unpriced.snapshot()["cost"] is None and unpriced.snapshot()["price_per_hour"] is None


@pytest.mark.parametrize(
    "junk",
    [
        {},
        {"request_id": "r"},
        {"worker": None, "timings": None},
        {"worker": "app-tier-instance-1", "timings": []},
        {"worker": "app-tier-instance-1", "timings": {"worker_up_s": "soon"}},
        {"worker": ["w"], "timings": {"worker_rate_ips": 1e400}},
        {"worker": "app-tier-instance-1", "timings": {"worker_rate_ips": -1, "worker_up_s": 1e9}},
    ],
)
async def test_malformed_results_are_counted_and_teach_nothing(
    fleet_settings: Settings, aws: AwsClients, resources: Resources, junk: dict[str, Any]
) -> None:
    scaler = make_scaler(fleet_settings, aws, resources, arriving=1)
    await scaler.step()  # launches app-tier-instance-1
    scaler.observe_result(junk)
    capacity = scaler.snapshot()["capacity"]
    assert capacity["worker_rate_ips"]["samples"] == capacity["boot_s"]["samples"] == 0
    assert scaler.snapshot()["images"] == 1
