"""The worker fleet as an EC2 Auto Scaling group (`IRAS_FLEET=asg`).

The scaler decides how many workers there should be, as with `Ec2Fleet`; here it only
says so, by setting the group's desired capacity, and Auto Scaling does the rest: it
launches from the launch template (spot or on-demand, in whichever zone and instance
type has capacity), replaces what EC2 finds unhealthy or AWS reclaims, and at a scale-in
picks the instances to end itself, passing over those protected from scale-in. Workers
protect their instance while they hold work (`iras.worker.protection`), so a scale-in
ends idle workers first, and none while every one is busy: the desired capacity is then
below the group's size until a worker goes idle, and the scaler, which still sees more
instances than it wants, asks again and so ends it.

The instances are listed with DescribeInstances, as `Ec2Fleet` lists its own (the tag
`aws:autoscaling:groupName` marks a group's instances), so that the scaler reads the
same states, launch times and heartbeat tags whichever launched them. The launch-round
token is not needed: a desired capacity set twice is set once. `warm_pool` does not
apply (a group's warm pool is a feature of its own, not used here).

The group itself is made by `iras provision --fleet` (`iras.infra.auto_scaling`); a
missing one is a `FleetConfigError`, which the scaler logs and retries.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from iras.aws import BotocoreClient
from iras.config import Settings
from iras.infra.auto_scaling import describe_group, is_missing_group
from iras.scaler.fleet import (
    LIVE_STATES,
    WARM_STATES,
    FleetConfigError,
    Instance,
    describe_app_tier,
    live,
)

log = logging.getLogger(__name__)

#: The tag Auto Scaling puts on every instance it launches into a group.
GROUP_NAME_TAG = "aws:autoscaling:groupName"


def missing_group_error(name: str) -> FleetConfigError:
    return FleetConfigError(
        f"there is no Auto Scaling group {name!r} (IRAS_ASG_NAME) for the workers: with "
        "IRAS_FLEET=asg, run `iras provision --fleet` (with IRAS_FLEET=asg set) to make it"
    )


class AsgFleet:
    """App-tier instances of one IRAS deployment, launched and ended by its Auto Scaling group."""

    def __init__(
        self, ec2: BotocoreClient, autoscaling: BotocoreClient, settings: Settings
    ) -> None:
        self._ec2 = ec2
        self._autoscaling = autoscaling
        self._group = settings.asg_name
        #: Whether the group was found to exist: looked up once, and again after a call
        #: that said it is gone.
        self._group_seen = False
        self._last_desired: int | None = None
        if settings.warm_pool:
            log.warning("IRAS_WARM_POOL does not apply to IRAS_FLEET=asg and is ignored")

    async def instances(self) -> list[Instance]:
        """The group's pending, running and (rarely, being replaced) stopped instances."""
        await self._require_group()
        return await describe_app_tier(
            self._ec2,
            LIVE_STATES + WARM_STATES,
            {"Name": f"tag:{GROUP_NAME_TAG}", "Values": [self._group]},
        )

    async def grow(self, desired: int, instances: list[Instance], token: str) -> list[Instance]:
        """Raise the desired capacity; the instances listed now that were not before.

        Real Auto Scaling launches seconds later, so the list is usually empty there and
        the scaler meets the new instances at its next look (the embedded AWS launches
        within the call)."""
        await self._set_desired(desired)
        before = {instance.id for instance in instances}
        return [i for i in live(await self.instances()) if i.id not in before]

    async def shrink(self, desired: int, released: list[Instance]) -> None:
        """Lower the desired capacity: Auto Scaling picks which instances end, among those
        not protected from scale-in (`released`, the scaler's pick, is only a wish here)."""
        await self._set_desired(desired)

    async def replace(self, broken: list[Instance]) -> None:
        """End `broken` without lowering the desired capacity: the group launches their
        replacements. Protection from scale-in does not stop this."""
        for instance in broken:
            try:
                await self._autoscaling.terminate_instance_in_auto_scaling_group(
                    InstanceId=instance.id, ShouldDecrementDesiredCapacity=False
                )
            except ClientError as error:  # left the group meanwhile: nothing to replace
                if error.response["Error"]["Code"] != "ValidationError":
                    raise
                log.warning("cannot replace %s: %s", instance.id, error)
                continue
            log.info("terminating %s (%s); the group replaces it", instance.name, instance.id)

    async def _set_desired(self, desired: int) -> None:
        await self._require_group()
        try:
            await self._autoscaling.set_desired_capacity(
                AutoScalingGroupName=self._group, DesiredCapacity=desired, HonorCooldown=False
            )
        except ClientError as error:
            raise self._config_error(error) from error
        # Set again each look while protected instances hold up a scale-in: said once.
        level = logging.DEBUG if desired == self._last_desired else logging.INFO
        log.log(level, "Auto Scaling group %s: desired capacity %d", self._group, desired)
        self._last_desired = desired

    async def _require_group(self) -> None:
        if self._group_seen:
            return
        if await describe_group(self._autoscaling, self._group) is None:
            raise missing_group_error(self._group)
        self._group_seen = True

    def _config_error(self, error: ClientError) -> Exception:
        """What a refused SetDesiredCapacity means: a group gone, or one that does not fit
        the settings (a desired capacity above its MaxSize); else the error itself."""
        if is_missing_group(error):
            self._group_seen = False
            return missing_group_error(self._group)
        details: dict[str, Any] = error.response.get("Error", {})
        if details.get("Code") == "ValidationError":
            return FleetConfigError(
                f"the Auto Scaling group {self._group} refused the desired capacity: "
                f"{details.get('Message')} (after changing IRAS_MAX_WORKERS, run "
                "`iras provision --fleet` again to update the group's MaxSize)"
            )
        return error
