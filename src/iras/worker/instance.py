"""Which EC2 instance this worker runs on, how it shows it is alive, and how it removes itself.

A worker that goes idle terminates its own instance, so a fleet whose gateway died still
drains to zero and stops costing money. The instance id comes from `IRAS_INSTANCE_ID`
(the local instance runner passes it, because moto's metadata endpoint answers the same
id for every instance) or, with `IRAS_INSTANCE_ID=auto`, from IMDSv2. The metadata
service is only ever asked when configured so: on a laptop nothing probes 169.254.169.254.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp

from iras.aws import BotocoreClient
from iras.aws.errors import AWS_ERRORS
from iras.scaler.fleet import HEARTBEAT_TAG, LIVE_STATES, describe_by_id

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


async def stop_instance(ec2: BotocoreClient, instance_id: str) -> None:
    """Ask EC2 to stop `instance_id`: an instance of the warm pool is kept, not ended."""
    await ec2.stop_instances(InstanceIds=[instance_id])
    log.info("asked EC2 to stop instance %s (warm pool)", instance_id)


class InstanceAgent:
    """What a worker does for the instance it runs on, besides working.

    It tags the instance `iras:heartbeat` every `heartbeat_s`, first as it starts (so a
    local runner knows the instance has its worker), and removes the tag when it stops
    gracefully: the scaler replaces an instance whose tag stops changing
    (`iras.scaler.liveness`). With `watch` (local workers, whose "instance" is a record
    in the embedded AWS) it also asks for its instance's state and calls `on_gone` once
    the instance is no longer pending or running, as an EC2 instance's shutdown stops
    its worker. Failures are logged and tried again next beat: they never end a worker.
    """

    def __init__(
        self, ec2: BotocoreClient, instance_id: str, heartbeat_s: float, *, watch: bool
    ) -> None:
        self._ec2 = ec2
        self.instance_id = instance_id
        self._heartbeat_s = heartbeat_s
        self._watch = watch
        self._beats = 0

    async def run(self, on_gone: Callable[[], None]) -> None:
        """Beat (and watch) until cancelled, or until the instance is gone."""
        if self._heartbeat_s <= 0:
            return
        while True:
            try:
                await self.beat()
                if self._watch and not await self._still_live():
                    log.info("instance %s is no longer running: stopping", self.instance_id)
                    on_gone()
                    return
            except AWS_ERRORS as error:
                log.warning("heartbeat of instance %s failed: %s", self.instance_id, error)
            await asyncio.sleep(self._heartbeat_s)

    async def beat(self) -> None:
        self._beats += 1
        value = f"{self._beats}@{int(time.time())}"
        await self._ec2.create_tags(
            Resources=[self.instance_id], Tags=[{"Key": HEARTBEAT_TAG, "Value": value}]
        )

    async def withdraw(self) -> None:
        """Remove the heartbeat: this instance has no worker any more (a graceful stop)."""
        if self._heartbeat_s <= 0:
            return
        try:
            await self._ec2.delete_tags(Resources=[self.instance_id], Tags=[{"Key": HEARTBEAT_TAG}])
        except AWS_ERRORS as error:
            log.warning("could not remove the heartbeat of %s: %s", self.instance_id, error)

    async def _still_live(self) -> bool:
        described = await describe_by_id(self._ec2, [self.instance_id])
        return any(instance.state in LIVE_STATES for instance in described)
