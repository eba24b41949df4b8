"""What an app-tier instance is told at boot: the worker's settings, as cloud-init user data.

The AMI (baked from `deploy/app-tier/`) already holds IRAS, the ONNX export and an
enabled `iras-worker.service` that starts once its environment file exists. So the user
data of every worker instance, whether the autoscaler launches it from an AMI or from the
launch template `iras provision --fleet` writes, is only that file: cloud-init writes it
in its early (network) stage, and the service, ordered after that stage, starts seconds
after boot without waiting for the late user-script stage. This module is the one source
of that user data; `deploy/app-tier/iras-worker.service` names the same file.
"""

from __future__ import annotations

import re

from iras.config import Settings

#: The systemd unit the AMI carries (deploy/app-tier/iras-worker.service).
WORKER_UNIT = "iras-worker.service"
#: The unit's EnvironmentFile: the worker's IRAS_* settings on this instance.
WORKER_ENV_FILE = "/etc/iras/worker.env"

#: Settings a worker instance must share with the gateway: where AWS is and what to use.
WORKER_SETTINGS = (
    "region",
    "input_bucket",
    "output_bucket",
    "request_queue",
    "dead_letter_queue",
    "results_prefix",
    "model_name",
    "batch_size",
    "idle_exit_s",
)

# What a systemd EnvironmentFile takes unquoted; anything else is double-quoted.
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9._:/@+,=-]*")


def worker_environment(settings: Settings) -> dict[str, str]:
    """The worker's environment on an instance: the shared settings, and its own id.

    `IRAS_INSTANCE_ID=auto` lets an idle worker find (through IMDSv2) and terminate its
    own instance, so a fleet whose gateway died still drains to zero.
    """
    environment = {"IRAS_INSTANCE_ID": "auto"}
    for name in WORKER_SETTINGS:
        environment[f"IRAS_{name.upper()}"] = str(getattr(settings, name))
    return environment


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
    itself, a launch template wants it base64): AMI, type, role, security groups, IMDSv2.

    IMDSv2 only (`HttpTokens=required`): the worker asks it for its instance id, and a
    token-less metadata service is what SSRF attacks read credentials from.
    """
    spec: dict[str, object] = {
        "ImageId": image_id,
        "InstanceType": settings.worker_instance_type,
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
    }
    profile = settings.worker_instance_profile
    if profile:
        spec["IamInstanceProfile"] = {"Arn" if profile.startswith("arn:") else "Name": profile}
    if settings.worker_security_group_ids:
        spec["SecurityGroupIds"] = list(settings.worker_security_group_ids)
    return spec
