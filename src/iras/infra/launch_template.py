"""The launch template of app-tier instances, kept in line with the settings.

EC2 launch templates are versioned and never edited in place, so "create or update" means:
create the template when missing; when its default version says something else than the
settings, add a version and make it the default (the autoscaler launches the default);
otherwise change nothing. "Says something else" is judged by a digest of the wanted
content kept in the version's description, because EC2 gives the data back normalised
(encoded user data, filled-in defaults) rather than as it was sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from iras.aws import BotocoreClient
from iras.config import Settings
from iras.infra.app_tier import worker_instance_spec, worker_user_data

log = logging.getLogger(__name__)

#: Template name when IRAS_WORKER_LAUNCH_TEMPLATE is unset.
DEFAULT_LAUNCH_TEMPLATE = "iras-app-tier"
#: How a version made by `iras provision` describes itself: this prefix and the digest.
_DESCRIPTION_PREFIX = "iras sha256:"
_MISSING_CODES = {
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateId.NotFoundException",
}

Change = Literal["created", "updated", "unchanged"]


class LaunchTemplateError(RuntimeError):
    """The launch template cannot be made as configured."""


@dataclass(frozen=True, slots=True)
class LaunchTemplate:
    """A launch template as provisioned: its name, id, default version and what changed."""

    name: str
    id: str
    version: int
    change: Change


def launch_template_name(settings: Settings) -> str:
    return settings.worker_launch_template or DEFAULT_LAUNCH_TEMPLATE


def launch_template_data(settings: Settings) -> dict[str, object]:
    """What a worker instance is launched with: `worker_instance_spec` plus its user data."""
    if not settings.worker_image_id:
        raise LaunchTemplateError(
            "cannot write the workers' launch template: set IRAS_WORKER_IMAGE_ID to the AMI "
            "baked from deploy/app-tier (see deploy/app-tier/BAKING.md)"
        )
    data = worker_instance_spec(settings, settings.worker_image_id)
    data["UserData"] = base64.b64encode(worker_user_data(settings).encode()).decode()
    return data


def content_digest(data: dict[str, object]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


async def ensure_launch_template(ec2: BotocoreClient, settings: Settings) -> LaunchTemplate:
    """Create the template, add a default version when the settings changed, or do nothing."""
    name = launch_template_name(settings)
    data = launch_template_data(settings)
    description = _DESCRIPTION_PREFIX + content_digest(data)
    current = await default_version(ec2, name)
    if current is None:
        response = await ec2.create_launch_template(
            LaunchTemplateName=name, VersionDescription=description, LaunchTemplateData=data
        )
        made = response["LaunchTemplate"]
        log.info("created launch template %s", name)
        return LaunchTemplate(name, made["LaunchTemplateId"], 1, "created")
    if current.get("VersionDescription") == description:
        return LaunchTemplate(
            name, current["LaunchTemplateId"], int(current["VersionNumber"]), "unchanged"
        )
    response = await ec2.create_launch_template_version(
        LaunchTemplateName=name, VersionDescription=description, LaunchTemplateData=data
    )
    version = int(response["LaunchTemplateVersion"]["VersionNumber"])
    await ec2.modify_launch_template(LaunchTemplateName=name, DefaultVersion=str(version))
    log.info("launch template %s: version %d is the default now", name, version)
    return LaunchTemplate(name, current["LaunchTemplateId"], version, "updated")


async def default_version(ec2: BotocoreClient, name: str) -> dict[str, Any] | None:
    """The default version of template `name` as EC2 describes it, or None when missing."""
    try:
        response = await ec2.describe_launch_template_versions(
            LaunchTemplateName=name, Versions=["$Default"]
        )
    except ClientError as error:
        if error.response["Error"]["Code"] in _MISSING_CODES:
            return None
        raise
    versions = response.get("LaunchTemplateVersions", [])
    return dict(versions[0]) if versions else None


async def delete_launch_template(ec2: BotocoreClient, name: str) -> bool:
    """Delete template `name` with all its versions; False when there was none."""
    try:
        await ec2.delete_launch_template(LaunchTemplateName=name)
    except ClientError as error:
        if error.response["Error"]["Code"] in _MISSING_CODES:
            return False
        raise
    log.info("deleted launch template %s", name)
    return True
