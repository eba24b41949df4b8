"""The gateway as an EC2 instance record, so that the embedded AWS shows the whole topology.

On AWS the gateway runs on an instance of its own, which the course's checks look for by
its Name tag (`web-instance`, running) beside the app tier's `app-tier-instance-<n>`.
`iras serve` runs the gateway as a process instead; it registers a record for it in the
embedded EC2 (`IRAS_WEB_INSTANCE_NAME`) while it runs and terminates it at stop, so that
`describe-instances` (or the course's own scripts) sees one web instance and the fleet.

The record is tagged `iras:role=web-tier`: the autoscaler counts and sizes only
`app-tier` instances (`iras.scaler.fleet`), so the gateway's record is never taken for a
worker, scaled in, or replaced for want of a heartbeat.
"""

from __future__ import annotations

import logging

from iras.aws import BotocoreClient
from iras.config import Settings
from iras.scaler.fleet import ROLE_TAG

log = logging.getLogger(__name__)

WEB_ROLE = "web-tier"
#: What the record is launched as: a stand-in, as any id and small type do for the
#: embedded AWS (on AWS the gateway's real instance is the operator's).
WEB_INSTANCE_TYPE = "t3.micro"
STAND_IN_IMAGE_ID = "ami-0123456789abcdef0"


async def register_web_instance(ec2: BotocoreClient, settings: Settings) -> str | None:
    """Launch the gateway's record, named `web_instance_name`; its id (None: not asked)."""
    name = settings.web_instance_name
    if not name:
        return None
    tags = [{"Key": "Name", "Value": name}, {"Key": ROLE_TAG, "Value": WEB_ROLE}]
    launched = await ec2.run_instances(
        ImageId=settings.worker_image_id or STAND_IN_IMAGE_ID,
        InstanceType=WEB_INSTANCE_TYPE,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    instance_id = str(launched["Instances"][0]["InstanceId"])
    log.info("the gateway is EC2 instance %s (%s) in the embedded AWS", instance_id, name)
    return instance_id


async def deregister_web_instance(ec2: BotocoreClient, instance_id: str) -> None:
    """Terminate the gateway's record: the web tier has stopped."""
    await ec2.terminate_instances(InstanceIds=[instance_id])
