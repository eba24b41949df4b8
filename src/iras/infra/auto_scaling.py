"""The workers' EC2 Auto Scaling group (`IRAS_FLEET=asg`), kept in line with the settings.

With an Auto Scaling group the scaler no longer launches instances: it sets the group's
desired capacity (`iras.scaler.asg_fleet`), and Auto Scaling launches from the workers'
launch template, spreads the instances over the zones, replaces those EC2 finds
unhealthy and, with `asg_spot_percentage`, buys spot capacity and replaces reclaimed
spot instances. The group is sized by the scaler alone: MinSize 0 and MaxSize the
scaler's cap, no scaling policies of its own.

"Create or update" works as for the launch template (`iras.infra.launch_template`):
create the group when missing; when it says something else than the settings, update
it; otherwise change nothing. What the group should look like is `group_shape` and
`group_tags`, pure functions. "Says something else" is judged by a digest of that shape
kept in the group's `iras:shape` tag, because Auto Scaling describes a group with its
defaults filled in and its mixed instances policy rewritten, not as it was sent; a
change made by hand in the console is therefore not seen (run with a changed setting,
or delete the tag, to force an update). An update never touches the desired capacity:
that is the scaler's, and a provision run while workers are busy must not end them.

The group launches the template's default version (`$Default`), so a template that
`iras provision --fleet` re-versions reaches new instances without a group update;
running instances keep the version they were launched from.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from iras.aws import BotocoreClient
from iras.config import Settings
from iras.infra.launch_template import LaunchTemplate
from iras.scaler.fleet import AWS_MAX_WORKERS, ROLE, ROLE_TAG

log = logging.getLogger(__name__)

#: The group's tag holding the digest of the shape it was last made or updated with.
SHAPE_TAG = "iras:shape"
#: How DescribeAutoScalingGroups marks a group that a delete is removing.
DELETING = "Delete in progress"
#: How spot capacity is chosen: the pools least likely to be interrupted, among the
#: cheaper ones (AWS's recommendation; "lowest-price" is interrupted more often).
SPOT_ALLOCATION_STRATEGY = "price-capacity-optimized"

Change = Literal["created", "updated", "unchanged"]


class AutoScalingGroupError(RuntimeError):
    """The group cannot be made as configured."""


@dataclass(frozen=True, slots=True)
class AutoScalingGroup:
    """The group as provisioned: its name, ARN, size bounds and what changed."""

    name: str
    arn: str
    max_size: int
    change: Change


def max_size(settings: Settings) -> int:
    """The group's MaxSize: the scaler's cap on AWS (`scaling_config`), so that every
    desired capacity the scaler asks for fits."""
    return settings.max_workers or AWS_MAX_WORKERS


def uses_spot(settings: Settings) -> bool:
    return settings.asg_spot_percentage > 0


def instance_types(settings: Settings) -> list[str]:
    """worker_instance_type first (the on-demand choice), then asg_instance_types, once each."""
    return list(dict.fromkeys([settings.worker_instance_type, *settings.asg_instance_types]))


def group_shape(
    settings: Settings, template: LaunchTemplate, zones: Sequence[str] = ()
) -> dict[str, object]:
    """The parameters of CreateAutoScalingGroup and UpdateAutoScalingGroup alike, all but
    the group's name, desired capacity and tags.

    Where it launches: the subnets of `asg_subnet_ids`, else `zones` (the region's zones,
    in whose default subnets the group launches; `iras provision` asks EC2 for them),
    else the region's first zone (`<region>a`): a group needs at least one of either.
    What it launches: the template's default version; with a spot share or more
    instance types, through a mixed instances policy (on-demand for the first
    `asg_on_demand_base` workers, then `100 - asg_spot_percentage` percent of the rest)
    that may pick any of `instance_types`, and with capacity rebalancing when spot is
    used, so that a spot instance at risk of interruption is replaced before it goes.
    New instances are not protected from scale-in: a worker protects its own while it
    holds work (`iras.worker.protection`).
    """
    spec = {"LaunchTemplateId": template.id, "Version": "$Default"}
    shape: dict[str, object] = {
        "MinSize": 0,
        "MaxSize": max_size(settings),
        "NewInstancesProtectedFromScaleIn": False,
        "CapacityRebalance": uses_spot(settings),
    }
    if settings.asg_subnet_ids:
        shape["VPCZoneIdentifier"] = ",".join(settings.asg_subnet_ids)
    else:
        shape["AvailabilityZones"] = list(zones) or [f"{settings.region}a"]
    if uses_spot(settings) or settings.asg_instance_types:
        shape["MixedInstancesPolicy"] = {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": spec,
                "Overrides": [{"InstanceType": kind} for kind in instance_types(settings)],
            },
            "InstancesDistribution": {
                "OnDemandBaseCapacity": settings.asg_on_demand_base,
                "OnDemandPercentageAboveBaseCapacity": 100 - settings.asg_spot_percentage,
                "SpotAllocationStrategy": SPOT_ALLOCATION_STRATEGY,
            },
        }
    else:
        shape["LaunchTemplate"] = spec
    return shape


def group_tags(settings: Settings) -> list[dict[str, object]]:
    """The tags every instance of the group gets at launch: the app-tier role (how the
    scaler, the teardown and the IAM policies know a worker) and its name."""
    return [
        {"Key": ROLE_TAG, "Value": ROLE, "PropagateAtLaunch": True},
        {"Key": "Name", "Value": settings.worker_name_prefix, "PropagateAtLaunch": True},
    ]


def shape_digest(shape: dict[str, object], tags: list[dict[str, object]]) -> str:
    canonical = json.dumps({"shape": shape, "tags": tags}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def tags_of_group(name: str, tags: list[dict[str, object]]) -> list[dict[str, object]]:
    """`tags` as CreateOrUpdateTags wants them: each naming the group it belongs to."""
    return [{"ResourceId": name, "ResourceType": "auto-scaling-group", **tag} for tag in tags]


async def ensure_auto_scaling_group(
    autoscaling: BotocoreClient,
    settings: Settings,
    template: LaunchTemplate,
    zones: Sequence[str] = (),
) -> AutoScalingGroup:
    """Create the group (desired capacity 0), update it when the settings changed, or do
    nothing. `zones`: where it launches when `asg_subnet_ids` is unset (`group_shape`)."""
    name = settings.asg_name
    shape = group_shape(settings, template, zones)
    tags = group_tags(settings)
    digest = shape_digest(shape, tags)
    tags_with_digest = [*tags, {"Key": SHAPE_TAG, "Value": digest, "PropagateAtLaunch": False}]
    current = await describe_group(autoscaling, name)
    if current is not None and current.get("Status") == DELETING:
        raise AutoScalingGroupError(
            f"the Auto Scaling group {name} is still being deleted (`iras teardown`): run "
            "`iras provision --fleet` again once it is gone, in a few minutes"
        )
    if current is None:
        await autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name, DesiredCapacity=0, Tags=tags_with_digest, **shape
        )
        log.info("created Auto Scaling group %s", name)
        made = await describe_group(autoscaling, name)
        arn = str(made["AutoScalingGroupARN"]) if made else ""
        return AutoScalingGroup(name, arn, max_size(settings), "created")
    arn = str(current["AutoScalingGroupARN"])
    if tag_value(current, SHAPE_TAG) == digest:
        return AutoScalingGroup(name, arn, max_size(settings), "unchanged")
    await autoscaling.update_auto_scaling_group(AutoScalingGroupName=name, **shape)
    await autoscaling.create_or_update_tags(Tags=tags_of_group(name, tags_with_digest))
    log.info("updated Auto Scaling group %s", name)
    return AutoScalingGroup(name, arn, max_size(settings), "updated")


async def describe_group(autoscaling: BotocoreClient, name: str) -> dict[str, Any] | None:
    """Group `name` as Auto Scaling describes it, or None when there is none. A group
    being deleted is still described, with `Status` `DELETING`, until its instances are
    gone."""
    response = await autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    for group in response.get("AutoScalingGroups", []):
        if group.get("AutoScalingGroupName") == name:
            return dict(group)
    return None


def tag_value(group: dict[str, Any], key: str) -> str | None:
    return next((str(t["Value"]) for t in group.get("Tags", []) if t.get("Key") == key), None)


async def availability_zones(ec2: BotocoreClient) -> list[str]:
    """The region's Availability Zones that any account may launch into, in name order
    (Local and Wavelength Zones, which need opting in, left out)."""
    response = await ec2.describe_availability_zones(
        Filters=[
            {"Name": "zone-type", "Values": ["availability-zone"]},
            {"Name": "state", "Values": ["available"]},
        ]
    )
    return sorted(zone["ZoneName"] for zone in response.get("AvailabilityZones", []))


async def delete_auto_scaling_group(autoscaling: BotocoreClient, name: str) -> bool:
    """Delete group `name` with its instances (ForceDelete: protected ones too, busy or
    not); False when there was none. AWS deletes in the background: the name is taken
    until its instances are gone."""
    try:
        await autoscaling.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    except ClientError as error:
        if is_missing_group(error):
            return False
        raise
    log.info("deleting Auto Scaling group %s and its instances", name)
    return True


def is_missing_group(error: ClientError) -> bool:
    """Whether `error` says the group does not exist (Auto Scaling answers ValidationError
    "AutoScalingGroup name not found - ...")."""
    details = error.response.get("Error", {})
    return details.get("Code") == "ValidationError" and "not found" in details.get("Message", "")
