"""A worker of an Auto Scaling group (`IRAS_FLEET=asg`): busy, its instance is kept.

With a group the scaler sets only how many workers there should be, and AWS picks which
instances a scale-in ends. Left to itself it may pick one in the middle of a batch: the
worker then drains on SIGTERM (it hands back what it had not started), but the batch it
was classifying is cut short if the shutdown outlasts `shutdown_grace_s`, and the
requests it held wait for their visibility timeout. So a worker protects its own
instance from scale-in (SetInstanceProtection) while it holds requests, and lifts the
protection once it has held none for `RELEASE_AFTER_S`: a scale-in then ends idle
workers, and while all are busy, none until one goes idle (the scaler asks again).

Between two batches a busy worker holds nothing for a moment; the delay before lifting
keeps it from flipping the protection per batch, which would cost two calls a batch and
leave it open to a scale-in at each. A failed call is logged and tried again
`RETRY_S` later: it never ends or slows the worker. A worker started on an instance
lifts any protection it finds there (its first call, before any work), so one left by
a worker that crashed while busy does not outlive it. Protection only stops scale-in:
a health-check replacement, a spot interruption, the scaler's replacement of a silent
instance and `iras teardown` end a protected instance all the same.

`ScheduleOfProtection` decides when to call and with what, on a clock given to it;
`ScaleInProtection` makes the calls. `leave_group` is the idle exit of a worker whose
scaler is gone: it ends its instance and lowers the group's desired capacity with it, so
the group does not launch a replacement that would idle and exit in turn, for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.parsers import ResponseParserError

from iras.aws import BotocoreClient
from iras.aws.errors import AWS_ERRORS

log = logging.getLogger(__name__)

#: What a failed call raises: AWS away or refusing, or an answer botocore cannot read
#: (an emulator's or a proxy's error page).
CALL_ERRORS = (*AWS_ERRORS, ResponseParserError)

#: Seconds a worker holds nothing before its instance may be scaled in again.
RELEASE_AFTER_S = 5.0
#: Seconds after a failed call before the next try.
RETRY_S = 2.0
#: How often the protection is looked at when no new work nudges it.
LOOK_INTERVAL_S = 1.0


@dataclass(slots=True)
class ScheduleOfProtection:
    """When to call SetInstanceProtection, and with what; pure (times in seconds of any
    monotonic clock)."""

    release_after_s: float = RELEASE_AFTER_S
    retry_s: float = RETRY_S
    #: The protection as last set; None until the first call (a worker restarted on its
    #: instance does not know what its predecessor left).
    protected: bool | None = None
    #: Last time the worker took or held work; None: never yet.
    busy_at_s: float | None = None
    failed_at_s: float | None = None

    def busy(self, now_s: float) -> None:
        self.busy_at_s = now_s

    def due(self, holding: bool, now_s: float) -> bool | None:
        """The protection to set now (True: protect), or None: no call to make.

        Wanted while holding work and for `release_after_s` after; not wanted before any
        work, so that the first look clears whatever protection the instance had."""
        if holding:
            self.busy_at_s = now_s
        wanted = self.busy_at_s is not None and now_s - self.busy_at_s < self.release_after_s
        if wanted == self.protected:
            return None
        if self.failed_at_s is not None and now_s - self.failed_at_s < self.retry_s:
            return None
        return wanted

    def done(self, protected: bool) -> None:
        self.protected = protected
        self.failed_at_s = None

    def failed(self, now_s: float) -> None:
        self.failed_at_s = now_s


class ScaleInProtection:
    """Keeps this worker's instance protected from scale-in while the worker is busy.

    The worker calls `working()` as it receives requests (protection follows at once)
    and runs `run(holding)` beside its loops, which looks every `LOOK_INTERVAL_S` and
    lifts the protection once `holding()` has said False for `RELEASE_AFTER_S`.
    """

    def __init__(
        self,
        autoscaling: BotocoreClient,
        group: str,
        instance_id: str,
        *,
        schedule: ScheduleOfProtection | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float = LOOK_INTERVAL_S,
    ) -> None:
        self._autoscaling = autoscaling
        self.group = group
        self.instance_id = instance_id
        self.schedule = schedule or ScheduleOfProtection()
        self._clock = clock
        self._interval_s = interval_s
        self._nudge = asyncio.Event()

    @property
    def protected(self) -> bool | None:
        """The protection as last set (None: not set yet)."""
        return self.schedule.protected

    def working(self) -> None:
        """The worker took work: protect its instance now (cheap; never raises)."""
        self.schedule.busy(self._clock())
        if self.schedule.protected is not True:
            self._nudge.set()

    async def run(self, holding: Callable[[], bool]) -> None:
        """Keep the protection in line with `holding()` (whether the worker holds any
        request now) until cancelled."""
        while True:
            self._nudge.clear()
            await self.settle(holding())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), self._interval_s)

    async def settle(self, holding: bool) -> None:
        """Make the one call the schedule says is due now, if any."""
        now_s = self._clock()
        wanted = self.schedule.due(holding, now_s)
        if wanted is None:
            return
        try:
            await self._autoscaling.set_instance_protection(
                AutoScalingGroupName=self.group,
                InstanceIds=[self.instance_id],
                ProtectedFromScaleIn=wanted,
            )
        except CALL_ERRORS as error:
            self.schedule.failed(now_s)
            log.warning(
                "could not %s instance %s from scale-in (tried again in %.0f s): %s",
                "protect" if wanted else "stop protecting",
                self.instance_id,
                self.schedule.retry_s,
                error,
            )
            return
        self.schedule.done(wanted)
        log.info(
            "instance %s %s from scale-in",
            self.instance_id,
            "protected" if wanted else "no longer protected",
        )


async def leave_group(autoscaling: BotocoreClient, instance_id: str) -> None:
    """End `instance_id` (this worker's own) and lower its group's desired capacity by one:
    an idle exit with no scaler to do it. EC2's TerminateInstances would leave the
    desired capacity as it was, and the group would launch a replacement."""
    await autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=instance_id, ShouldDecrementDesiredCapacity=True
    )
    log.info("asked Auto Scaling to terminate instance %s and not replace it", instance_id)
