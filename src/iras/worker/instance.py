"""Which EC2 instance this worker runs on, and how it removes itself.

A worker that goes idle terminates its own instance, so a fleet whose gateway died still
drains to zero and stops costing money. The instance id comes from `IRAS_INSTANCE_ID`
(the local instance runner passes it, because moto's metadata endpoint answers the same
id for every instance) or, with `IRAS_INSTANCE_ID=auto`, from IMDSv2. The metadata
service is only ever asked when configured so: on a laptop nothing probes 169.254.169.254.
"""

from __future__ import annotations

import logging

import aiohttp

from iras.aws import BotocoreClient

log = logging.getLogger(__name__)

_TOKEN_TTL_S = 60
_IMDS_TIMEOUT_S = 2.0


class InstanceIdError(RuntimeError):
    """The instance id was asked of the metadata service, which did not give it."""


async def resolve_instance_id(configured: str | None, imds_url: str) -> str | None:
    """The configured id, the one IMDSv2 reports when configured as 'auto', or None."""
    if configured != "auto":
        return configured or None
    timeout = aiohttp.ClientTimeout(total=_IMDS_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.put(
                f"{imds_url}/latest/api/token",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(_TOKEN_TTL_S)},
            ) as response:
                response.raise_for_status()
                token = await response.text()
            async with http.get(
                f"{imds_url}/latest/meta-data/instance-id",
                headers={"X-aws-ec2-metadata-token": token},
            ) as response:
                response.raise_for_status()
                return (await response.text()).strip()
    except (aiohttp.ClientError, TimeoutError) as error:
        raise InstanceIdError(
            f"IRAS_INSTANCE_ID=auto but the instance metadata service at {imds_url} did not "
            f"answer ({error!r}); set IRAS_INSTANCE_ID to the instance id, or unset it when "
            "not running on EC2"
        ) from error


async def terminate_instance(ec2: BotocoreClient, instance_id: str) -> None:
    """Ask EC2 to terminate `instance_id` (this worker's own instance)."""
    await ec2.terminate_instances(InstanceIds=[instance_id])
    log.info("asked EC2 to terminate instance %s", instance_id)
