"""The workers' Auto Scaling group: its wanted shape, made and kept in line idempotently,
and removed with its instances by teardown."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import iras.cli
from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.auto_scaling import (
    SHAPE_TAG,
    availability_zones,
    delete_auto_scaling_group,
    describe_group,
    ensure_auto_scaling_group,
    group_shape,
    group_tags,
    tag_value,
)
from iras.infra.launch_template import LaunchTemplate, ensure_launch_template
from iras.scaler.fleet import AWS_MAX_WORKERS, ROLE, ROLE_TAG

TEMPLATE = LaunchTemplate("iras-app-tier", "lt-0123456789abcdef0", 3, "unchanged")
SPEC = {"LaunchTemplateId": TEMPLATE.id, "Version": "$Default"}


@pytest.fixture
def asg_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"fleet": "asg", "worker_image_id": "ami-0123456789abcdef0", "max_workers": 4}
    )


async def group(aws: AwsClients, settings: Settings) -> dict[str, Any]:
    found = await describe_group(aws.autoscaling, settings.asg_name)
    assert found is not None
    return found


async def live_ids(aws: AwsClients) -> set[str]:
    response = await aws.ec2.describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
    )
    return {i["InstanceId"] for r in response["Reservations"] for i in r["Instances"]}


# --- the shape, without a server ---------------------------------------------------------


def test_an_on_demand_group_launches_the_default_template_version_from_zero() -> None:
    settings = Settings.model_construct()
    shape = group_shape(settings, TEMPLATE, ["us-east-1a", "us-east-1b"])
    assert shape == {
        "MinSize": 0,
        "MaxSize": AWS_MAX_WORKERS,
        "NewInstancesProtectedFromScaleIn": False,
        "CapacityRebalance": False,
        "AvailabilityZones": ["us-east-1a", "us-east-1b"],
        "LaunchTemplate": SPEC,
    }
    assert "DesiredCapacity" not in shape  # the scaler's, never provision's


def test_the_cap_is_max_workers_and_subnets_replace_zones() -> None:
    settings = Settings.model_construct(max_workers=7, asg_subnet_ids=("subnet-a", "subnet-b"))
    shape = group_shape(settings, TEMPLATE, ["us-east-1a"])
    assert shape["MaxSize"] == 7
    assert shape["VPCZoneIdentifier"] == "subnet-a,subnet-b"
    assert "AvailabilityZones" not in shape


def test_without_subnets_or_zones_the_group_takes_the_regions_first_zone() -> None:
    settings = Settings.model_construct(region="eu-west-1")
    assert group_shape(settings, TEMPLATE)["AvailabilityZones"] == ["eu-west-1a"]


def test_spot_goes_through_a_mixed_instances_policy_with_an_on_demand_base() -> None:
    settings = Settings.model_construct(
        asg_spot_percentage=70,
        asg_on_demand_base=1,
        asg_instance_types=("t3a.medium", "t3.medium", "m5.large"),
    )
    shape = group_shape(settings, TEMPLATE, ["us-east-1a"])
    assert "LaunchTemplate" not in shape  # the policy's own template replaces it
    assert shape["CapacityRebalance"] is True
    assert shape["MixedInstancesPolicy"] == {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": SPEC,
            "Overrides": [  # worker_instance_type first, each type once
                {"InstanceType": "t3.medium"},
                {"InstanceType": "t3a.medium"},
                {"InstanceType": "m5.large"},
            ],
        },
        "InstancesDistribution": {
            "OnDemandBaseCapacity": 1,
            "OnDemandPercentageAboveBaseCapacity": 30,
            "SpotAllocationStrategy": "price-capacity-optimized",
        },
    }


def test_more_instance_types_without_spot_stay_on_demand() -> None:
    settings = Settings.model_construct(asg_instance_types=("t3a.medium",))
    shape = group_shape(settings, TEMPLATE, ["us-east-1a"])
    policy: Any = shape["MixedInstancesPolicy"]
    assert policy["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 100
    assert shape["CapacityRebalance"] is False


def test_instances_are_tagged_app_tier_and_named_at_launch() -> None:
    tags = group_tags(Settings.model_construct(worker_name_prefix="worker"))
    assert tags == [
        {"Key": ROLE_TAG, "Value": ROLE, "PropagateAtLaunch": True},
        {"Key": "Name", "Value": "worker", "PropagateAtLaunch": True},
    ]


# --- against the embedded AWS -------------------------------------------------------------


async def test_provisioning_is_idempotent_and_updates_never_touch_the_desired_capacity(
    asg_settings: Settings, aws: AwsClients
) -> None:
    template = await ensure_launch_template(aws.ec2, asg_settings)
    zones = await availability_zones(aws.ec2)
    assert zones and all(zone.startswith(asg_settings.region) for zone in zones)

    made = await ensure_auto_scaling_group(aws.autoscaling, asg_settings, template, zones)
    assert (made.name, made.max_size, made.change) == ("iras-app-tier", 4, "created")
    described = await group(aws, asg_settings)
    assert made.arn == described["AutoScalingGroupARN"]
    assert (described["MinSize"], described["MaxSize"], described["DesiredCapacity"]) == (0, 4, 0)
    assert described["LaunchTemplate"]["LaunchTemplateId"] == template.id
    assert sorted(described["AvailabilityZones"]) == zones
    tags = {t["Key"]: t for t in described["Tags"]}
    assert tags[ROLE_TAG]["Value"] == ROLE and tags[ROLE_TAG]["PropagateAtLaunch"]
    assert tags["Name"]["Value"] == asg_settings.worker_name_prefix
    assert await live_ids(aws) == set()

    again = await ensure_auto_scaling_group(aws.autoscaling, asg_settings, template, zones)
    assert again.change == "unchanged"

    await aws.autoscaling.set_desired_capacity(
        AutoScalingGroupName=asg_settings.asg_name, DesiredCapacity=2
    )
    running = await live_ids(aws)
    assert len(running) == 2
    bigger = asg_settings.model_copy(
        update={"max_workers": 9, "asg_spot_percentage": 100, "worker_name_prefix": "worker"}
    )
    updated = await ensure_auto_scaling_group(aws.autoscaling, bigger, template, zones)
    assert (updated.max_size, updated.change) == (9, "updated")
    described = await group(aws, bigger)
    assert (described["MaxSize"], described["DesiredCapacity"]) == (9, 2)
    policy = described["MixedInstancesPolicy"]
    assert policy["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 0
    assert {t["Key"]: t["Value"] for t in described["Tags"]}["Name"] == "worker"
    assert await live_ids(aws) == running  # the busy fleet is left as it was
    assert (await ensure_auto_scaling_group(aws.autoscaling, bigger, template, zones)).change == (
        "unchanged"
    )
    assert tag_value(described, SHAPE_TAG) is not None


async def test_the_group_launches_into_the_configured_subnets(
    asg_settings: Settings, aws: AwsClients
) -> None:
    subnets = (await aws.ec2.describe_subnets())["Subnets"][:2]
    in_subnets = asg_settings.model_copy(
        update={"asg_subnet_ids": tuple(s["SubnetId"] for s in subnets)}
    )
    template = await ensure_launch_template(aws.ec2, in_subnets)
    await ensure_auto_scaling_group(aws.autoscaling, in_subnets, template)
    described = await group(aws, in_subnets)
    assert described["VPCZoneIdentifier"] == ",".join(in_subnets.asg_subnet_ids)


async def test_deleting_a_missing_group_is_fine(asg_settings: Settings, aws: AwsClients) -> None:
    assert await delete_auto_scaling_group(aws.autoscaling, asg_settings.asg_name) is False


def test_provision_fleet_command_makes_the_group_with_the_template(
    asg_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRAS_FLEET", "asg")
    monkeypatch.setenv("IRAS_WORKER_IMAGE_ID", "ami-0123456789abcdef0")
    monkeypatch.setenv("IRAS_MAX_WORKERS", "5")
    endpoint = ["--endpoint-url", str(asg_settings.endpoint_url)]
    assert iras.cli.main(["provision", "--fleet", *endpoint]) == 0
    assert iras.cli.main(["provision", "--fleet", *endpoint]) == 0
    out = capsys.readouterr().out
    assert (
        "Auto Scaling group: iras-app-tier, 0-5 workers, on-demand, types t3.medium: created"
        in (out)
    )
    assert out.count("Auto Scaling group: ") == 2 and ": unchanged" in out
    assert "IRAS_FLEET=asg IRAS_ASG_NAME=iras-app-tier" in out


async def test_teardown_removes_the_group_with_every_instance_protected_or_not(
    asg_settings: Settings, aws: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    template = await ensure_launch_template(aws.ec2, asg_settings)
    await ensure_auto_scaling_group(aws.autoscaling, asg_settings, template)
    name = asg_settings.asg_name
    await aws.autoscaling.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=2)
    busy = sorted(await live_ids(aws))[0]
    await aws.autoscaling.set_instance_protection(
        AutoScalingGroupName=name, InstanceIds=[busy], ProtectedFromScaleIn=True
    )
    argv = ["teardown", "--fleet", "--yes", "--endpoint-url", str(asg_settings.endpoint_url)]
    assert await asyncio.to_thread(iras.cli.main, argv) == 0
    assert f"Auto Scaling group {name}, with its instances" in capsys.readouterr().out
    assert await describe_group(aws.autoscaling, name) is None
    assert await live_ids(aws) == set()  # none relaunched, the protected one gone too
