"""Remove what `iras provision` made: buckets, queues and, for the fleet, its template
and Auto Scaling group.

Tearing down is split in two so that nothing is lost by surprise: `plan_teardown` only
looks (what exists, how full each bucket is), and `tear_down` removes what a plan names.
The command in between shows the plan and asks before emptying a bucket that holds
objects. With the fleet, app-tier instances left (running or stopped) are terminated too:
with their queue gone they could only fail, while still costing money. The gateways'
reply queues (`<reply_queue_prefix>-<gateway id>`) go as well: a gateway with a fixed id
keeps its queue when it stops, so without this a retired deployment would leave them.
The workers' Auto Scaling group (`IRAS_ASG_NAME`, whatever `IRAS_FLEET` says now) goes
first, with every instance in it: an instance terminated while its group still stands
would only be replaced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from iras.aws import AwsClients, BotocoreClient
from iras.aws.queues import MISSING_QUEUE_CODES
from iras.config import Settings
from iras.infra.auto_scaling import DELETING, delete_auto_scaling_group, describe_group
from iras.infra.launch_template import default_version, delete_launch_template, launch_template_name
from iras.infra.provision import find_queue_url
from iras.scaler.fleet import LIVE_STATES, WARM_STATES, Ec2Fleet, Instance

log = logging.getLogger(__name__)

#: Objects (versions and delete markers included) listed and deleted per S3 call.
_PAGE = 1000
_MISSING_BUCKET_CODES = {"404", "NoSuchBucket", "NotFound"}


@dataclass(frozen=True, slots=True)
class Bucket:
    """An existing bucket and how many objects it holds (`more`: at least that many)."""

    name: str
    objects: int
    more: bool = False

    def describe(self) -> str:
        if not self.objects:
            return f"s3://{self.name} (empty)"
        return f"s3://{self.name} ({self.objects}{'+' if self.more else ''} objects)"


@dataclass(frozen=True, slots=True)
class TeardownPlan:
    """What exists of an IRAS deployment, in the order it is removed."""

    instances: list[Instance] = field(default_factory=list)
    launch_template: str | None = None
    auto_scaling_group: str | None = None
    queues: dict[str, str] = field(default_factory=dict)  # name -> URL
    buckets: list[Bucket] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (
            self.instances
            or self.launch_template
            or self.auto_scaling_group
            or self.queues
            or self.buckets
        )

    @property
    def non_empty_buckets(self) -> list[Bucket]:
        return [bucket for bucket in self.buckets if bucket.objects]

    def describe(self) -> list[str]:
        """One line per resource, for the confirmation and the report."""
        lines = []
        if self.auto_scaling_group:
            lines.append(f"Auto Scaling group {self.auto_scaling_group}, with its instances")
        lines += [f"instance {i.name} ({i.id}, {i.state})" for i in self.instances]
        if self.launch_template:
            lines.append(f"launch template {self.launch_template}")
        lines += [f"queue {name}" for name in self.queues]
        lines += [f"bucket {bucket.describe()}" for bucket in self.buckets]
        return lines


async def plan_teardown(settings: Settings, aws: AwsClients, fleet: bool) -> TeardownPlan:
    """Look up what `tear_down` would remove; changes nothing."""
    instances: list[Instance] = []
    template: str | None = None
    group: str | None = None
    if fleet:
        described = await describe_group(aws.autoscaling, settings.asg_name)
        if described is not None and described.get("Status") != DELETING:
            group = settings.asg_name
        instances = await Ec2Fleet(aws.ec2, settings).instances(LIVE_STATES + WARM_STATES)
        name = launch_template_name(settings)
        template = name if await default_version(aws.ec2, name) is not None else None
    queues: dict[str, str] = {}
    named = (settings.request_queue, settings.dead_letter_queue, settings.reply_queue)
    for queue in (name for name in named if name is not None):
        url = await find_queue_url(aws.sqs, queue)
        if url is not None:
            queues[queue] = url
    queues.update(await reply_queues(aws.sqs, settings.reply_queue_prefix))
    buckets = [
        found
        for name in dict.fromkeys(
            (settings.input_bucket, settings.output_bucket, settings.records_bucket)
        )
        if (found := await inspect_bucket(aws.s3, name)) is not None
    ]
    return TeardownPlan(instances, template, group, queues, buckets)


async def tear_down(plan: TeardownPlan, aws: AwsClients, settings: Settings) -> None:
    """Remove everything `plan` names; whatever vanished meanwhile is skipped."""
    if plan.auto_scaling_group:
        await delete_auto_scaling_group(aws.autoscaling, plan.auto_scaling_group)
    await Ec2Fleet(aws.ec2, settings).terminate(plan.instances)
    if plan.launch_template:
        await delete_launch_template(aws.ec2, plan.launch_template)
    for name, url in plan.queues.items():
        try:
            await aws.sqs.delete_queue(QueueUrl=url)
        except ClientError as error:
            if error.response["Error"]["Code"] not in MISSING_QUEUE_CODES:
                raise
        log.info("deleted queue %s", name)
    for bucket in plan.buckets:
        await delete_bucket(aws.s3, bucket.name)


async def reply_queues(sqs: BotocoreClient, prefix: str) -> dict[str, str]:
    """The gateways' reply queues, by name: every queue named `<prefix>-...`."""
    found: dict[str, str] = {}
    token: str | None = None
    while True:
        page = await sqs.list_queues(
            QueueNamePrefix=f"{prefix}-", MaxResults=1000, **({"NextToken": token} if token else {})
        )
        for url in page.get("QueueUrls", []):
            found[url.rsplit("/", 1)[-1]] = url
        token = page.get("NextToken")
        if not token:
            return found


async def inspect_bucket(s3: BotocoreClient, name: str) -> Bucket | None:
    """The bucket with a count of its objects (up to one page), or None when missing."""
    try:
        page = await s3.list_object_versions(Bucket=name, MaxKeys=_PAGE)
    except ClientError as error:
        if error.response["Error"]["Code"] in _MISSING_BUCKET_CODES:
            return None
        raise
    count = len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))
    return Bucket(name, count, bool(page.get("IsTruncated")))


async def delete_bucket(s3: BotocoreClient, name: str) -> None:
    """Empty the bucket (every version and delete marker) and delete it."""
    try:
        while True:
            page = await s3.list_object_versions(Bucket=name, MaxKeys=_PAGE)
            objects = [
                {"Key": entry["Key"], "VersionId": entry["VersionId"]}
                for entry in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if not objects:
                break
            response = await s3.delete_objects(
                Bucket=name, Delete={"Objects": objects, "Quiet": True}
            )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise RuntimeError(
                    f"cannot empty s3://{name}: {first.get('Key')}: {first.get('Message')} "
                    "(does the caller have s3:DeleteObject and s3:DeleteObjectVersion?)"
                )
        await s3.delete_bucket(Bucket=name)
    except ClientError as error:
        if error.response["Error"]["Code"] in _MISSING_BUCKET_CODES:
            return
        raise
    log.info("deleted bucket %s", name)
