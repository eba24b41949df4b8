"""The worker fleet through the EC2 API: list, launch, terminate, start, stop.

Workers are instances tagged `Name=<prefix>-<n>` and `iras:role=app-tier`; the tag is
how a restarted gateway adopts the fleet it finds, and how the course's scripts count
workers. The same calls run against AWS and against the embedded AWS, where
`LocalInstanceRunner` gives each instance a worker process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from iras.aws import BotocoreClient
from iras.config import Settings
from iras.infra.app_tier import worker_instance_spec, worker_user_data

log = logging.getLogger(__name__)

ROLE_TAG = "iras:role"
ROLE = "app-tier"
LIVE_STATES = ("pending", "running")
WARM_STATES = ("stopping", "stopped")


class FleetConfigError(RuntimeError):
    """Workers cannot be launched as configured."""


@dataclass(frozen=True, slots=True)
class Instance:
    id: str
    name: str
    state: str
    #: EC2's LaunchTime, in seconds since the Unix epoch (AWS's clock, to the second;
    #: None if not given). Real EC2 sets it again when a stopped instance is started; the
    #: embedded AWS keeps the first. Only the ages of instances this gateway did not
    #: launch itself are read from it (`iras.scaler.meter`).
    launched_at: float | None = field(default=None, compare=False)

    @property
    def number(self) -> int:
        tail = self.name.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else 0


def _instance(raw: dict[str, Any], name: str) -> Instance:
    launch_time = raw.get("LaunchTime")
    launched_at = launch_time.timestamp() if isinstance(launch_time, datetime) else None
    return Instance(raw["InstanceId"], name, raw["State"]["Name"], launched_at)


def next_names(prefix: str, taken: set[str], count: int) -> list[str]:
    """The `count` lowest free names `<prefix>-<n>`, n from 1."""
    names: list[str] = []
    n = 1
    while len(names) < count:
        name = f"{prefix}-{n}"
        if name not in taken:
            names.append(name)
        n += 1
    return names


class Ec2Fleet:
    """App-tier instances of one IRAS deployment."""

    def __init__(self, ec2: BotocoreClient, settings: Settings) -> None:
        self._ec2 = ec2
        self._settings = settings

    async def instances(
        self, states: tuple[str, ...] = LIVE_STATES + WARM_STATES
    ) -> list[Instance]:
        paginator = self._ec2.get_paginator("describe_instances")
        found: list[Instance] = []
        async for page in paginator.paginate(
            Filters=[
                {"Name": f"tag:{ROLE_TAG}", "Values": [ROLE]},
                {"Name": "instance-state-name", "Values": list(states)},
            ]
        ):
            for reservation in page.get("Reservations", []):
                for raw in reservation.get("Instances", []):
                    tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
                    found.append(_instance(raw, tags.get("Name", "")))
        return sorted(found, key=lambda instance: (instance.number, instance.id))

    async def launch(self, names: list[str]) -> list[Instance]:
        launched = []
        for name in names:
            response = await self._ec2.run_instances(
                MinCount=1, MaxCount=1, **self._launch_spec(name)
            )
            raw = response["Instances"][0]
            launched.append(_instance(raw, name))
        if launched:
            log.info("launched %s", ", ".join(f"{i.name} ({i.id})" for i in launched))
        return launched

    async def terminate(self, instances: list[Instance]) -> None:
        if instances:
            await self._ec2.terminate_instances(InstanceIds=[i.id for i in instances])
            log.info("terminating %s", ", ".join(i.name for i in instances))

    async def start(self, instances: list[Instance]) -> None:
        if instances:
            await self._ec2.start_instances(InstanceIds=[i.id for i in instances])
            log.info("starting %s", ", ".join(i.name for i in instances))

    async def stop(self, instances: list[Instance]) -> None:
        if instances:
            await self._ec2.stop_instances(InstanceIds=[i.id for i in instances])
            log.info("stopping %s", ", ".join(i.name for i in instances))

    def _launch_spec(self, name: str) -> dict[str, object]:
        settings = self._settings
        tags = [{"Key": "Name", "Value": name}, {"Key": ROLE_TAG, "Value": ROLE}]
        spec: dict[str, object] = {
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}],
        }
        if settings.worker_launch_template:  # `iras provision --fleet` wrote its user data
            spec["LaunchTemplate"] = {"LaunchTemplateName": settings.worker_launch_template}
        elif settings.worker_image_id:
            spec.update(worker_instance_spec(settings, settings.worker_image_id))
            spec["UserData"] = worker_user_data(settings)
        else:
            raise FleetConfigError(
                "cannot launch workers: set IRAS_WORKER_LAUNCH_TEMPLATE or IRAS_WORKER_IMAGE_ID"
            )
        return spec
