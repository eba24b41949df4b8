"""The worker fleet through the EC2 API: list, launch, terminate, start, stop.

Workers are instances tagged `Name=<prefix>-<n>` and `iras:role=app-tier`; the tag is
how a restarted gateway adopts the fleet it finds, and how the course's scripts count
workers. The same calls run against AWS and against the embedded AWS, where
`LocalInstanceRunner` gives each instance a worker process.

`Fleet` is what the controller needs of a fleet, whoever launches the instances:
`Ec2Fleet` here (IRAS launches them: `IRAS_FLEET=instances`) or an Auto Scaling group
(`iras.scaler.asg_fleet`). Each launch carries a client token, so a call that botocore
retries after a lost answer launches one instance, not two; and an instance launched
here is counted from the moment RunInstances answers, even while EC2's eventually
consistent DescribeInstances does not list it yet, so the cap holds at every instant.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from iras.aws import BotocoreClient
from iras.config import Settings
from iras.infra.app_tier import worker_instance_spec, worker_user_data

log = logging.getLogger(__name__)

ROLE_TAG = "iras:role"
ROLE = "app-tier"
HEARTBEAT_TAG = "iras:heartbeat"
LIVE_STATES = ("pending", "running")
WARM_STATES = ("stopping", "stopped")
#: How long an instance launched here is counted while DescribeInstances does not list
#: it yet (EC2's listing lags its launches by seconds at most).
LISTING_LAG_S = 60.0
#: Default cap on AWS when `max_workers` is unset (the scaler's, and an ASG's MaxSize).
AWS_MAX_WORKERS = 20
#: EC2's longest client token.
CLIENT_TOKEN_MAX = 64


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
    #: The `iras:heartbeat` tag its worker last wrote (None: no worker has yet).
    heartbeat: str | None = field(default=None, compare=False)

    @property
    def number(self) -> int:
        tail = self.name.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else 0


def instance_from(raw: dict[str, Any]) -> Instance:
    """An `Instance` from one instance of a DescribeInstances or RunInstances answer."""
    tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
    launch_time = raw.get("LaunchTime")
    launched_at = launch_time.timestamp() if isinstance(launch_time, datetime) else None
    return Instance(
        raw["InstanceId"],
        tags.get("Name", ""),
        raw["State"]["Name"],
        launched_at,
        tags.get(HEARTBEAT_TAG),
    )


def live(instances: list[Instance]) -> list[Instance]:
    return [i for i in instances if i.state in LIVE_STATES]


def client_token(token: str, name: str) -> str:
    """RunInstances' idempotency token for launching `name` in the launch round `token`."""
    return f"{token}-{name}"[-CLIENT_TOKEN_MAX:]


class Fleet(Protocol):
    """The app-tier instances as the controller sees and sizes them."""

    async def instances(self) -> list[Instance]:
        """Live and warm (stopped) instances, in name order."""
        ...

    async def grow(self, desired: int, instances: list[Instance], token: str) -> list[Instance]:
        """Bring the live fleet up to `desired`; the instances launched or started now
        (their boot is timed from here). `token` is unique to this round of launches."""
        ...

    async def shrink(self, desired: int, released: list[Instance]) -> None:
        """Bring the live fleet down to `desired`, releasing `released` where the fleet
        lets the caller choose."""
        ...

    async def replace(self, broken: list[Instance]) -> None:
        """Terminate instances whose worker is gone; the next look replaces them."""
        ...


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


async def describe_app_tier(
    ec2: BotocoreClient, states: tuple[str, ...], *extra_filters: dict[str, Any]
) -> list[Instance]:
    """App-tier instances in `states` (and `extra_filters`), in name order."""
    paginator = ec2.get_paginator("describe_instances")
    found: list[Instance] = []
    async for page in paginator.paginate(
        Filters=[
            {"Name": f"tag:{ROLE_TAG}", "Values": [ROLE]},
            {"Name": "instance-state-name", "Values": list(states)},
            *extra_filters,
        ]
    ):
        for reservation in page.get("Reservations", []):
            found += [instance_from(raw) for raw in reservation.get("Instances", [])]
    return sorted(found, key=lambda instance: (instance.number, instance.id))


async def describe_by_id(ec2: BotocoreClient, instance_ids: list[str]) -> list[Instance]:
    """The instances `instance_ids`, in any state (DescribeInstances by id: an id EC2
    does not know raises `InvalidInstanceID.NotFound`)."""
    response = await ec2.describe_instances(InstanceIds=instance_ids)
    return [
        instance_from(raw)
        for reservation in response.get("Reservations", [])
        for raw in reservation.get("Instances", [])
    ]


class Ec2Fleet:
    """App-tier instances of one IRAS deployment, launched and terminated by IRAS."""

    def __init__(self, ec2: BotocoreClient, settings: Settings) -> None:
        self._ec2 = ec2
        self._settings = settings
        #: Launched here, not listed yet: id -> (instance, monotonic launch time).
        self._unlisted: dict[str, tuple[Instance, float]] = {}

    async def instances(
        self, states: tuple[str, ...] = LIVE_STATES + WARM_STATES
    ) -> list[Instance]:
        found = await describe_app_tier(self._ec2, states)
        listed = {i.id for i in found}
        now_s = time.monotonic()
        for instance_id, (_, launched_s) in list(self._unlisted.items()):
            if instance_id in listed or now_s - launched_s > LISTING_LAG_S:
                del self._unlisted[instance_id]
        if self._unlisted:  # rare: asked by id, EC2 says which it knows (in any state)
            known = await self._known(list(self._unlisted))
            for instance in known:
                del self._unlisted[instance.id]
            found += [i for i in known if i.state in states]
            if "pending" in states:
                found += [instance for instance, _ in self._unlisted.values()]
            found.sort(key=lambda instance: (instance.number, instance.id))
        return found

    async def _known(self, instance_ids: list[str]) -> list[Instance]:
        """The instances of `instance_ids` that EC2 describes when asked by id; none while
        its listing still lags (it answers InvalidInstanceID.NotFound then)."""
        try:
            return await describe_by_id(self._ec2, instance_ids)
        except ClientError as error:
            if error.response["Error"]["Code"] == "InvalidInstanceID.NotFound":
                return []
            raise

    async def grow(self, desired: int, instances: list[Instance], token: str) -> list[Instance]:
        """Start stopped instances first (warm pool), then launch the lowest free names."""
        missing = desired - len(live(instances))
        started: list[Instance] = []
        if self._settings.warm_pool and missing > 0:
            started = [i for i in instances if i.state == "stopped"][:missing]
            await self.start(started)
            missing -= len(started)
        names = next_names(self._settings.worker_name_prefix, {i.name for i in instances}, missing)
        return started + await self.launch(names, token)

    async def shrink(self, desired: int, released: list[Instance]) -> None:
        if self._settings.warm_pool:
            await self.stop(released)
        else:
            await self.terminate(released)

    async def replace(self, broken: list[Instance]) -> None:
        await self.terminate(broken)

    async def launch(self, names: list[str], token: str | None = None) -> list[Instance]:
        launched = []
        for name in names:
            spec = self._launch_spec(name)
            if token is not None:
                spec["ClientToken"] = client_token(token, name)
            response = await self._ec2.run_instances(MinCount=1, MaxCount=1, **spec)
            instance = replace(instance_from(response["Instances"][0]), name=name)
            self._unlisted[instance.id] = (replace(instance, state="pending"), time.monotonic())
            launched.append(instance)
        if launched:
            log.info("launched %s", ", ".join(f"{i.name} ({i.id})" for i in launched))
        return launched

    async def terminate(self, instances: list[Instance]) -> None:
        self._forget(instances)
        if instances:
            await self._ec2.terminate_instances(InstanceIds=[i.id for i in instances])
            log.info("terminating %s", ", ".join(i.name for i in instances))

    async def start(self, instances: list[Instance]) -> None:
        if instances:
            await self._ec2.start_instances(InstanceIds=[i.id for i in instances])
            log.info("starting %s", ", ".join(i.name for i in instances))

    async def stop(self, instances: list[Instance]) -> None:
        self._forget(instances)
        if instances:
            await self._ec2.stop_instances(InstanceIds=[i.id for i in instances])
            log.info("stopping %s", ", ".join(i.name for i in instances))

    def _forget(self, instances: list[Instance]) -> None:
        """No longer count `instances` as launched but unlisted: they are being released."""
        for instance in instances:
            self._unlisted.pop(instance.id, None)

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
