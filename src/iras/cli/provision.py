"""`iras provision`: create or update the buckets, queues and fleet template on AWS
(and, with `IRAS_FLEET=asg`, the workers' Auto Scaling group)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from iras.config.loading import load_settings

if TYPE_CHECKING:
    from iras.config import Settings
    from iras.infra.auto_scaling import AutoScalingGroup
    from iras.infra.launch_template import LaunchTemplate
    from iras.infra.provision import Resources


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "provision",
        help=(
            "create or update buckets and queues; --fleet: the launch template (and with "
            "IRAS_FLEET=asg the Auto Scaling group) (idempotent)"
        ),
        description=(
            "Create, or bring in line with the settings, the input and output buckets "
            "(public access blocked, encrypted), the request queue and its dead-letter "
            "queue on the configured AWS endpoint; with --fleet also the launch template "
            "of app-tier instances (IRAS_WORKER_IMAGE_ID, IRAS_WORKER_INSTANCE_TYPE, "
            "IRAS_WORKER_INSTANCE_PROFILE, IRAS_WORKER_SECURITY_GROUP_IDS) and, with "
            "IRAS_FLEET=asg, the workers' Auto Scaling group launching from it (IRAS_ASG_NAME, "
            "IRAS_ASG_SUBNET_IDS, IRAS_ASG_INSTANCE_TYPES, IRAS_ASG_ON_DEMAND_BASE, "
            "IRAS_ASG_SPOT_PERCENTAGE, IRAS_MAX_WORKERS). Safe to run any number of times; "
            "an update never changes the group's desired capacity."
        ),
    )
    parser.add_argument(
        "--endpoint-url", help="AWS endpoint (IRAS_ENDPOINT_URL / AWS_ENDPOINT_URL)"
    )
    parser.add_argument(
        "--fleet",
        action="store_true",
        help=(
            "also create or update the workers' launch template (IRAS_WORKER_LAUNCH_TEMPLATE) "
            "and, with IRAS_FLEET=asg, their Auto Scaling group"
        ),
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from iras.infra.launch_template import LaunchTemplateError, launch_template_data

    settings = load_settings(endpoint_url=args.endpoint_url)
    if args.fleet:
        try:  # a template that cannot be made stops the run before anything is made
            launch_template_data(settings)
        except (LaunchTemplateError, ValueError) as error:
            print(f"iras provision: {error}", file=sys.stderr)
            return 2
    resources = asyncio.run(provision_with_clients(settings))
    print(f"input bucket:      s3://{resources.input_bucket}")
    print(f"output bucket:     s3://{resources.output_bucket}")
    print(f"request queue:     {resources.request_queue_url}")
    print(f"dead-letter queue: {resources.dead_letter_queue_url}")
    if not args.fleet:
        return 0
    from iras.infra.auto_scaling import AutoScalingGroupError

    try:
        template, group = asyncio.run(provision_fleet(settings))
    except AutoScalingGroupError as error:
        print(f"iras provision: {error}", file=sys.stderr)
        return 1
    print(
        f"launch template:   {template.name} ({template.id}), default version "
        f"{template.version}: {template.change}"
    )
    if group is not None:
        print(describe_group(settings, group))
        print(f"  the gateway sizes it with IRAS_FLEET=asg IRAS_ASG_NAME={group.name}")
    elif settings.worker_launch_template != template.name:
        print(f"  the gateway launches from it with IRAS_WORKER_LAUNCH_TEMPLATE={template.name}")
    return 0


def describe_group(settings: Settings, group: AutoScalingGroup) -> str:
    """The group's line of the report: where it stands, its bounds and purchase options."""
    from iras.infra.auto_scaling import instance_types, uses_spot

    if uses_spot(settings):
        buying = (
            f"{settings.asg_spot_percentage}% spot above {settings.asg_on_demand_base} "
            f"on-demand, types {', '.join(instance_types(settings))}"
        )
    else:
        buying = f"on-demand, types {', '.join(instance_types(settings))}"
    return f"Auto Scaling group: {group.name}, 0-{group.max_size} workers, {buying}: {group.change}"


async def provision_with_clients(settings: Settings) -> Resources:
    from iras.aws import open_clients
    from iras.infra.provision import provision

    async with open_clients(settings) as aws:
        return await provision(settings, aws)


async def provision_fleet(settings: Settings) -> tuple[LaunchTemplate, AutoScalingGroup | None]:
    """The launch template, then (`IRAS_FLEET=asg`) the group that launches from it."""
    from iras.aws import open_clients
    from iras.infra.auto_scaling import availability_zones, ensure_auto_scaling_group
    from iras.infra.launch_template import ensure_launch_template

    async with open_clients(settings) as aws:
        template = await ensure_launch_template(aws.ec2, settings)
        if settings.fleet != "asg":
            return template, None
        zones = [] if settings.asg_subnet_ids else await availability_zones(aws.ec2)
        group = await ensure_auto_scaling_group(aws.autoscaling, settings, template, zones)
        return template, group
