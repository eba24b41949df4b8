"""The controller: observe the queue and the fleet, ask the policy, make it so.

It owns the clock, the AWS calls and the timeline that `/v1/scaler` shows; the decision
itself is `policy.decide`, a pure function. It observes every `scaler_interval_s` and
also the moment an upload arrives that may need more workers (`nudge`), so a fleet at
zero starts a worker before the first request is even queued, while uploads that find
the fleet big enough cost no AWS call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from iras.aws import MessageQueue
from iras.aws.errors import AWS_ERRORS
from iras.aws.retry import retry_while_away
from iras.config import Settings
from iras.scaler.fleet import (
    LIVE_STATES,
    Ec2Fleet,
    FleetConfigError,
    Instance,
    next_names,
)
from iras.scaler.local_runner import LocalInstanceRunner
from iras.scaler.policy import Decision, Observation, PolicyState, ScalingConfig, decide

log = logging.getLogger(__name__)

#: Points kept for `/v1/scaler`'s timeline (10 minutes at one a second).
TIMELINE_POINTS = 600
#: Default cap on AWS when `max_workers` is unset.
AWS_MAX_WORKERS = 20
#: Longest wait between two tries of a failing step: a try costs two AWS calls, and the
#: fleet must be sized again within seconds of AWS coming back (with 30 s it was not).
STEP_RETRY_MAX_S = 5.0


def scaling_config(settings: Settings) -> ScalingConfig:
    """The policy's bounds: `max_workers`, else the core count locally and 20 on AWS."""
    default_max = (os.cpu_count() or 1) if settings.local_instances else AWS_MAX_WORKERS
    max_workers = settings.max_workers or default_max
    return ScalingConfig(
        min_workers=min(settings.min_workers, max_workers),
        max_workers=max_workers,
        backlog_per_worker=settings.backlog_per_worker,
        scale_in_cooldown_s=settings.scale_in_cooldown_s,
    )


@dataclass(frozen=True, slots=True)
class Point:
    t: float
    workers: int
    starting: int
    desired: int
    backlog: int
    in_flight: int


def may_scale_out(
    last: Point | None, arriving: int, config: ScalingConfig, state: PolicyState
) -> bool:
    """Whether uploads arriving now could make the policy add workers.

    Asked of the policy itself, with the last observation plus `arriving`. Only then is
    the fleet observed at once (two AWS calls); otherwise the next period sees the
    uploads, and an upload that finds the fleet big enough costs no AWS call.
    """
    if last is None:
        return True
    guess = Observation(
        now_s=time.monotonic(),
        visible=last.backlog,
        in_flight=last.in_flight,
        arriving=arriving,
        workers=last.workers,
        starting=last.starting,
    )
    return decide(guess, config, state).desired > last.workers + last.starting


class Scaler:
    """Sizes the worker fleet from the request queue's backlog."""

    def __init__(
        self,
        settings: Settings,
        messages: MessageQueue,
        request_queue_url: str,
        fleet: Ec2Fleet,
        runner: LocalInstanceRunner | None,
        arriving: Callable[[], int] = lambda: 0,
    ) -> None:
        self._settings = settings
        self._messages = messages
        self._queue_url = request_queue_url
        self._fleet = fleet
        self._runner = runner
        self._arriving = arriving
        self.config = scaling_config(settings)
        self._state = PolicyState()
        self._uploads_since_look = 0
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.timeline: deque[Point] = deque(maxlen=TIMELINE_POINTS)
        self.last: Point | None = None

    def nudge(self) -> None:
        """An upload arrived: observe now if it may need more workers than there are."""
        self._uploads_since_look += 1
        if may_scale_out(self.last, self._arriving(), self.config, self._state):
            self._wake.set()

    async def run(self) -> None:
        """Observe and act until cancelled.

        A failed step (AWS away, a fleet misconfigured) is logged and tried again after a
        backoff that grows while the failures last; uploads do not cut it short, since
        each would only fail again. Uploads that come meanwhile are seen by the step
        that follows, which is why each step forgets the nudges before it.
        """
        interval_s = self._settings.scaler_interval_s
        while True:  # the scaler must outlive any outage: every failure is retried
            decision = await retry_while_away(
                self._step_afresh,
                on=Exception,
                failed="scaler step failed",
                logger=log,
                traceback_unless=(*AWS_ERRORS, FleetConfigError),
                wait_initial_s=interval_s,
                wait_max_s=max(STEP_RETRY_MAX_S, interval_s),
            )
            wait_s = interval_s
            if decision.recheck_in_s is not None:  # a cooldown ends before the period
                wait_s = min(wait_s, decision.recheck_in_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)

    async def _step_afresh(self) -> Decision:
        """A step that a nudge from now on (during it, or a wait after it) wakes again."""
        self._wake.clear()
        return await self.step()

    async def step(self) -> Decision:
        """One observe-decide-act round."""
        async with self._lock:
            visible, in_flight = await self._messages.depth(self._queue_url)
            instances = await self._fleet.instances()
            live = [i for i in instances if i.state in LIVE_STATES]
            observation = Observation(
                now_s=time.monotonic(),
                visible=visible,
                in_flight=in_flight,
                arriving=self._arriving(),
                workers=sum(i.state == "running" for i in live),
                starting=sum(i.state == "pending" for i in live),
                uploaded=self._uploads_since_look,
            )
            self._uploads_since_look = 0
            decision = decide(observation, self.config, self._state)
            if decision.desired != len(live):
                log.info("scaling %d -> %d: %s", len(live), decision.desired, decision.reason)
                instances = await self._act(decision.desired, instances)
            self._state = decision.state
            if self._runner is not None:
                await self._runner.sync(instances)
            self._record(observation, decision.desired, instances)
            return decision

    async def _act(self, desired: int, instances: list[Instance]) -> list[Instance]:
        live = [i for i in instances if i.state in LIVE_STATES]
        if desired > len(live):
            missing = desired - len(live)
            if self._settings.warm_pool:
                stopped = [i for i in instances if i.state == "stopped"][:missing]
                await self._fleet.start(stopped)
                missing -= len(stopped)
            taken = {i.name for i in instances}
            await self._fleet.launch(next_names(self._settings.worker_name_prefix, taken, missing))
        else:
            surplus = sorted(live, key=lambda i: (i.state != "pending", -i.number))
            chosen = surplus[: len(live) - desired]  # pending first, then the newest
            if self._settings.warm_pool:
                await self._fleet.stop(chosen)
            else:
                await self._fleet.terminate(chosen)
        return await self._fleet.instances()

    async def shutdown(self) -> None:
        """Stop local worker processes (on AWS the fleet outlives the gateway and idles out)."""
        if self._runner is not None:
            await self._runner.stop_all()

    def _record(self, observation: Observation, desired: int, instances: list[Instance]) -> None:
        """Keep the figures after acting: the fleet as it now is, the queue as observed."""
        point = Point(
            t=round(time.time(), 3),
            workers=sum(i.state == "running" for i in instances),
            starting=sum(i.state == "pending" for i in instances),
            desired=desired,
            backlog=observation.visible,
            in_flight=observation.in_flight,
        )
        self.timeline.append(point)
        self.last = point

    def snapshot(self, *, with_timeline: bool = True) -> dict[str, Any]:
        """What `/v1/scaler` answers; `/metrics` needs only the current figures."""
        last = self.last or Point(time.time(), 0, 0, 0, 0, 0)
        return {
            "workers": last.workers,
            "starting": last.starting,
            "desired": last.desired,
            "backlog": last.backlog,
            "in_flight": last.in_flight,
            "min_workers": self.config.min_workers,
            "max_workers": self.config.max_workers,
            "warm_pool": self._settings.warm_pool,
            "timeline": [asdict(point) for point in self.timeline] if with_timeline else [],
        }
