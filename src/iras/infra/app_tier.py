"""What an app-tier instance is told at boot: the worker's settings, as cloud-init user data.

The AMI (baked from `deploy/app-tier/`) already holds IRAS, the ONNX export and an
enabled `iras-worker.service` that starts once its environment file exists. So the user
data of every worker instance, whether the autoscaler launches it from an AMI or from the
launch template `iras provision --fleet` writes, is only that file: cloud-init writes it
in its early (network) stage, and the service, ordered after that stage, starts seconds
after boot without waiting for the late user-script stage. This module is the one source
of that user data; `deploy/app-tier/iras-worker.service` names the same file.

What the file holds follows from the settings model: every setting a worker reads that
is marked shared with the gateway (`WORKER_SHARED` in `iras.config.settings`) carries the
gateway's value, so a setting added there reaches the fleet without a list to keep up
here. Settings marked as the worker's own (its instance, its cores, its files) are never
passed.

An instance ends itself in two ways: an idle worker terminates it through the API (the
warm pool's stops it), and a worker that keeps crashing has systemd power it off
(`iras-worker-failed.service`), which the launch spec here turns into a termination.
"""

from __future__ import annotations

import re

from iras.config import Settings
from iras.config.settings import environment_variable, worker_settings

#: The systemd unit the AMI carries (deploy/app-tier/iras-worker.service).
WORKER_UNIT = "iras-worker.service"
#: The unit its OnFailure= starts once its restarts are used up: it powers the instance off.
WORKER_FAILED_UNIT = "iras-worker-failed.service"
#: The unit's EnvironmentFile: the worker's IRAS_* settings on this instance.
WORKER_ENV_FILE = "/etc/iras/worker.env"

#: Settings a worker instance takes from the gateway, in field order: where AWS is, what
#: to use and how to work (those marked `WORKER_SHARED`).
WORKER_SETTINGS = worker_settings("shared")

# What a systemd EnvironmentFile takes unquoted; anything else is double-quoted.
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9._:/@+,=-]*")


def worker_environment(settings: Settings) -> dict[str, str]:
    """The worker's environment on an instance: the shared settings that have a value,
    each by the variable a worker reads it from, and its own id.

    `IRAS_INSTANCE_ID=auto` lets an idle worker find (through IMDSv2) and terminate its
    own instance, so a fleet whose gateway died still drains to zero.
    """
    environment = {"IRAS_INSTANCE_ID": "auto"}
    for name in WORKER_SETTINGS:
        value = getattr(settings, name)
        if value is not None:  # unset is what the worker assumes anyway
            environment[environment_variable(name)] = environment_text(value)
    return environment


def environment_text(value: object) -> str:
    """A setting's value as `Settings` reads it back from the environment: booleans in
    lower case, lists comma-separated, everything else as `str` writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    return str(value)


def env_file_line(key: str, value: str) -> str:
    """`KEY=value` as systemd's EnvironmentFile reads it: quoted unless plain."""
    if any(ord(char) < 32 for char in value):
        raise ValueError(
            f"{key}={value!r} cannot go into a worker's environment file: it holds a control "
            "character (a line break?)"
        )
    if _PLAIN_VALUE.fullmatch(value):
        return f"{key}={value}"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{key}="{escaped}"'


def worker_user_data(settings: Settings) -> str:
    """The cloud-init user data of a worker instance: write the worker's environment file."""
    lines = [
        "#cloud-config",
        "# IRAS app-tier boot (iras.infra.app_tier): the settings of iras-worker.service, which the",
        "# AMI baked from deploy/app-tier/ starts as soon as this file exists.",
        "write_files:",
        f"  - path: {WORKER_ENV_FILE}",
        "    owner: root:root",
        "    permissions: '0644'",
        "    content: |",
    ]
    lines += [
        f"      {env_file_line(key, value)}" for key, value in worker_environment(settings).items()
    ]
    return "\n".join(lines) + "\n"


def worker_instance_spec(settings: Settings, image_id: str) -> dict[str, object]:
    """How every worker instance is launched, user data apart (RunInstances encodes that
    itself, a launch template wants it base64): AMI, type, role, security groups, IMDSv2,
    and a shutdown from within that terminates.

    IMDSv2 only (`HttpTokens=required`): the worker asks it for its instance id, and a
    token-less metadata service is what SSRF attacks read credentials from.

    `InstanceInitiatedShutdownBehavior=terminate`: a worker that keeps crashing powers its
    instance off (`iras-worker-failed.service`), and a stopped instance would keep its
    disk, count for nothing and never come back. Stops through the API (the warm pool's)
    are not instance-initiated and still stop. An Auto Scaling group ignores the setting
    in its launch template, but replaces an instance that is no longer running at once,
    which ends in the same place: terminated, and a new worker in its stead.
    """
    spec: dict[str, object] = {
        "ImageId": image_id,
        "InstanceType": settings.worker_instance_type,
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "InstanceInitiatedShutdownBehavior": "terminate",
    }
    profile = settings.worker_instance_profile
    if profile:
        spec["IamInstanceProfile"] = {"Arn" if profile.startswith("arn:") else "Name": profile}
    if settings.worker_security_group_ids:
        spec["SecurityGroupIds"] = list(settings.worker_security_group_ids)
    return spec
