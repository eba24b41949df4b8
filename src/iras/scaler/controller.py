"""The controller: observe the queue and the fleet, ask the policy, make it so.

It owns the clock, the AWS calls and the timeline that `/v1/scaler` shows; the decision
itself is `policy.decide`, a pure function. It observes every `scaler_interval_s` and
also the moment an upload arrives that may need more workers (`nudge`), so a fleet at
zero starts a worker before the first request is even queued, while uploads that find
the fleet big enough cost no AWS call.

It also learns from what comes back: every result the gateway receives passes through
`observe_result`, which feeds the capacity model (a worker's measured throughput, an
instance's boot time: `iras.scaler.reports`) and the billing meter (images answered,
`iras.scaler.meter`). The policy decides with the measured figures, the configured
ones standing in until the first measurement. The scale events, with the reasons and
figures behind them, are kept for `/v1/scaler` (`iras.scaler.decision_log`).

With several gateways, every one observes and decides, but only the holder of the
scaler's lease (`iras.scaler.lease`) acts: launches, releases, and the replacement of
instances whose worker's heartbeat stopped (`iras.scaler.liveness`). The others report
their uploads to it (`iras.scaler.peers`), so its policy sees the uploads of all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from iras.aws import MessageQueue
from iras.aws.errors import AWS_ERRORS
from iras.aws.retry import retry_while_away
from iras.config import Settings
from iras.messages import GatewayReport
from iras.scaler import billing
from iras.scaler.capacity import CapacityModel, Estimate
from iras.scaler.decision_log import DecisionLog, ScaleEvent, decision_fields, plain_figures
from iras.scaler.fleet import AWS_MAX_WORKERS, Fleet, FleetConfigError, Instance, live
from iras.scaler.lease import Lease
from iras.scaler.liveness import HeartbeatWatch
from iras.scaler.local_runner import LocalInstanceRunner
from iras.scaler.meter import BillingMeter
from iras.scaler.peers import PeerFigures, PeerReporter
from iras.scaler.policy import (
    Decision,
    Member,
    Observation,
    PolicyState,
    ScalingConfig,
    decide,
    pick_released,
    would_scale_out,
)
from iras.scaler.reports import WorkerReports

log = logging.getLogger(__name__)

#: Points kept for `/v1/scaler`'s timeline (10 minutes at one a second).
TIMELINE_POINTS = 600
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
        latency_target_s=settings.latency_target_s,
        billing_minimum_s=settings.billing_minimum_s,
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
    last: Point | None,
    arriving: int,
    config: ScalingConfig,
    state: PolicyState,
    *,
    worker_rate_ips: float | None = None,
    boot_s: float | None = None,
    ages_s: tuple[float, ...] = (),
) -> bool:
    """Whether uploads arriving now could make the policy add workers.

    Asked of the policy itself, with the last observation plus `arriving` (and the
    capacity figures the last step used). Only then is the fleet observed at once (two
    AWS calls); otherwise the next period sees the uploads, and an upload that finds the
    fleet big enough costs no AWS call.
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
        worker_rate_ips=worker_rate_ips,
        boot_s=boot_s,
        ages_s=ages_s,
    )
    return would_scale_out(guess, config, state)


def estimate_figures(estimate: Estimate) -> dict[str, Any]:
    """One capacity figure for `/v1/scaler`: the guess, the measurement, the samples."""
    return {
        "configured": estimate.configured,
        "measured": None if estimate.measured is None else round(estimate.measured, 3),
        "samples": estimate.samples,
    }


class Scaler:
    """Sizes the worker fleet from the request queue's backlog."""

    def __init__(
        self,
        settings: Settings,
        messages: MessageQueue,
        request_queue_url: str,
        fleet: Fleet,
        runner: LocalInstanceRunner | None,
        arriving: Callable[[], int] = lambda: 0,
        on_scale: Callable[[str], None] = lambda direction: None,
        *,
        lease: Lease | None = None,
        reporter: PeerReporter | None = None,
    ) -> None:
        """`on_scale` hears of each scale event, "out" or "in" (the gateway counts them).

        Without a `lease` this scaler always acts (one gateway, or tests); with one it
        acts only while it holds it, and otherwise sends `reporter`'s reports to the
        holder."""
        self._settings = settings
        self._messages = messages
        self._queue_url = request_queue_url
        self._fleet = fleet
        self._runner = runner
        self._arriving = arriving
        self._on_scale = on_scale
        self.lease = lease
        self._reporter = reporter
        self.config = scaling_config(settings)
        self.capacity = CapacityModel(settings.worker_rate_ips, settings.worker_boot_s)
        self._reports = WorkerReports(self.capacity)
        self.meter = BillingMeter(
            settings.billing_minimum_s,
            billing.price_per_hour(settings.worker_instance_type, settings.price_per_hour),
        )
        self.peers = PeerFigures(settings.scaler_interval_s)
        # Workers that do not beat (IRAS_WORKER_HEARTBEAT_S=0) are never judged silent.
        beating = settings.worker_heartbeat_s > 0
        self._heartbeats = HeartbeatWatch(settings.worker_silent_s if beating else 0.0)
        self.replaced = 0
        self.decisions = DecisionLog()
        self.last_observation: Observation | None = None
        self.last_decision: Decision | None = None
        self._ages_s: tuple[float, ...] = ()  # of the live instances, at the last step
        self._state = PolicyState()
        self._uploads_since_look = 0
        self._urgent = False  # an upload since the last step may need more workers
        self._token_prefix = uuid.uuid4().hex[:8]  # launch tokens unique to this process
        self._launch_rounds = 0
        self._last_change: tuple[int, int] | None = None  # (live, desired) of the last step
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.timeline: deque[Point] = deque(maxlen=TIMELINE_POINTS)
        self.last: Point | None = None

    @property
    def leading(self) -> bool:
        """Whether this gateway holds the lease (always, without one)."""
        return self.lease is None or self.lease.held_for_s() > 0

    def may_act(self) -> bool:
        """Whether this gateway may change the fleet now (`Lease.may_act`)."""
        return self.lease is None or self.lease.may_act()

    def wake(self) -> None:
        """Look again now (the lease changed hands, a peer's upload needs workers)."""
        self._wake.set()

    def arriving(self) -> int:
        """Uploads being stored now, here and (while leading) at the other gateways."""
        return self._arriving() + self.peers.arriving(time.monotonic())

    def nudge(self) -> None:
        """An upload arrived: observe now if it may need more workers than there are.

        A gateway that does not lead looks too: its step reports the upload to the
        leader at once, which then looks itself."""
        self._uploads_since_look += 1
        if self._reporter is not None:
            self._reporter.uploaded()
        if self._may_need_workers():
            self._urgent = True
            self._wake.set()

    def peer_report(self, report: GatewayReport) -> None:
        """Another gateway's uploads and results: counted as if they came here."""
        self.peers.add(report, time.monotonic())
        self._uploads_since_look += report.uploads
        self.meter.answered(report.answered)
        if report.urgent or (report.uploads and self._may_need_workers()):
            self._wake.set()

    def _may_need_workers(self) -> bool:
        return may_scale_out(
            self.last,
            self.arriving(),
            self.config,
            self._state,
            worker_rate_ips=self.capacity.rate.value,
            boot_s=self.capacity.boot.value,
            ages_s=self._ages_s,
        )

    def observe_result(self, result: dict[str, Any]) -> None:
        """A result reached the gateway: learn its worker's figures, count an image.

        Called for every result the reply queue brings, so O(1), and it never raises:
        results of old workers lack the figures, and any value may be malformed.
        """
        self._reports.result(result, time.monotonic())
        self.meter.answered()
        if self._reporter is not None:
            self._reporter.answered()

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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), decision.next_look_in_s(interval_s))

    async def _step_afresh(self) -> Decision:
        """A step that a nudge from now on (during it, or a wait after it) wakes again."""
        self._wake.clear()
        return await self.step()

    async def step(self) -> Decision:
        """One observe-decide-act round; only the lease's holder acts."""
        async with self._lock:
            visible, in_flight = await self._messages.depth(self._queue_url)
            instances = await self._fleet.instances()
            now_s = time.monotonic()
            alive = self._saw(instances, now_s)
            acting = self.may_act()
            silent = self._heartbeats.silent(alive, now_s)
            if silent and acting:
                await self._replace(silent, len(alive))
                instances = [i for i in instances if i not in silent]
                alive = [i for i in alive if i not in silent]
            self._ages_s = tuple(self._age_s(i, now_s) for i in alive)
            observation = Observation(
                now_s=now_s,
                visible=visible,
                in_flight=in_flight,
                arriving=self.arriving(),
                workers=sum(i.state == "running" for i in alive),
                starting=sum(i.state == "pending" for i in alive),
                uploaded=self._uploads_since_look,
                worker_rate_ips=self.capacity.rate.value,
                boot_s=self.capacity.boot.value,
                ages_s=self._ages_s,
            )
            self._uploads_since_look = 0
            decision = decide(observation, self.config, self._state)
            self.last_observation, self.last_decision = observation, decision
            previous, self._last_change = self._last_change, None
            if acting and decision.desired != len(alive):
                # Asked again as the step before: an Auto Scaling group whose scale-in
                # waits for protected (busy) instances. The call is repeated, not the event.
                again = not silent and (len(alive), decision.desired) == previous
                log.log(
                    logging.DEBUG if again else logging.INFO,
                    "scaling %d -> %d: %s %s",
                    len(alive),
                    decision.desired,
                    decision.reason,
                    plain_figures(decision.figures),
                    extra=decision_fields(observation, len(alive), decision),
                )
                instances = await self._act(decision.desired, instances, observation.ages_s)
                self._saw(instances, time.monotonic())
                if not again:
                    self._scaled(len(alive), decision)
                self._last_change = (len(alive), decision.desired)
            self._state = decision.state
            if self._runner is not None:  # only the leader boots new instances
                await self._runner.sync(instances, start_new=acting)
            await self._report_to_leader()
            self._record(observation, decision.desired, instances)
            return decision

    async def _report_to_leader(self) -> None:
        """As a follower, tell the leader of the uploads since the last report."""
        urgent, self._urgent = self._urgent, False
        if self._reporter is None or self.lease is None or self.leading:
            return
        try:
            await self._reporter.report(self.lease.leader_id, self._arriving(), urgent=urgent)
        except AWS_ERRORS as error:  # the counts wait for the next step
            log.warning("reporting uploads to the leading gateway failed: %s", error)

    async def _act(
        self, desired: int, instances: list[Instance], ages_s: Sequence[float]
    ) -> list[Instance]:
        """Grow or shrink the fleet to `desired`; the fleet as it is afterwards.

        Instances released are `pick_released`'s, given their `ages_s` in `live` order.
        Starting, to it, is pending or booting (launched here, no result yet): EC2 says
        "running" long before the worker takes work (and the embedded AWS never says
        "pending"), and an instance not yet taking work is the one to lose first."""
        alive = live(instances)
        if desired > len(alive):
            self._launch_rounds += 1
            lease_term = self.lease.term if self.lease is not None else 0
            token = f"{self._token_prefix}-{lease_term}-{self._launch_rounds}"
            asked_s = time.monotonic()
            self._launched(await self._fleet.grow(desired, instances, token), asked_s)
        else:
            members = [
                Member(i.id, i.state == "pending" or self._reports.booting(i.id), age_s)
                for i, age_s in zip(alive, ages_s, strict=True)
            ]
            released = set(
                pick_released(members, len(alive) - desired, self.config.billing_minimum_s)
            )
            await self._fleet.shrink(desired, [i for i in alive if i.id in released])
        return await self._fleet.instances()

    async def _replace(self, silent: list[Instance], live_count: int) -> None:
        """Terminate instances whose worker's heartbeat stopped; the decision that follows
        counts them out, and so launches their replacements when they are needed."""
        log.warning(
            "no heartbeat for %.0f s from %s: terminating (the fleet replaces them)",
            self._heartbeats.silent_s,
            ", ".join(f"{i.name} ({i.id})" for i in silent),
        )
        await self._fleet.replace(silent)
        self.replaced += len(silent)
        self.decisions.add(
            ScaleEvent(
                t=round(time.time(), 3),
                before=live_count,
                after=live_count - len(silent),
                reason=f"replacing {len(silent)} instance(s) with no heartbeat "
                f"for {self._heartbeats.silent_s:.0f} s",
                figures={"silent_s": self._heartbeats.silent_s},
            )
        )

    def _launched(self, instances: list[Instance], asked_s: float) -> None:
        """Instances this gateway launched (or started) when it asked, at `asked_s`: their
        boot is timed and their bill counted from then."""
        for instance in instances:
            self.meter.launched(instance.id, asked_s)
            self._reports.launched(instance, asked_s)

    def _saw(self, instances: list[Instance], now_s: float) -> list[Instance]:
        """Tell the meter and the reports which instances are live; return those."""
        alive = live(instances)
        wall_s = time.time()
        self.meter.seen(
            {
                i.id: None if i.launched_at is None else max(0.0, wall_s - i.launched_at)
                for i in alive
            },
            now_s,
        )
        self._reports.fleet(alive, now_s)
        return alive

    def _age_s(self, instance: Instance, now_s: float) -> float:
        age_s = self.meter.age_s(instance.id, now_s)
        return 0.0 if age_s is None else age_s

    def _scaled(self, before: int, decision: Decision) -> None:
        event = ScaleEvent(
            t=round(time.time(), 3),
            before=before,
            after=decision.desired,
            reason=decision.reason,
            figures=plain_figures(decision.figures),
        )
        self.decisions.add(event)
        self._on_scale(event.direction)

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
        """What `/v1/scaler` answers; `/metrics` needs only the current figures (no
        timeline, no decision log)."""
        last = self.last or Point(time.time(), 0, 0, 0, 0, 0)
        decision = self.last_decision
        now_s = time.monotonic()
        lease = self.lease
        return {
            "workers": last.workers,
            "starting": last.starting,
            "desired": last.desired,
            "backlog": last.backlog,
            "in_flight": last.in_flight,
            "leader": self.leading,
            "leader_id": lease.leader_id if lease is not None else None,
            "lease": {
                "term": lease.term if lease is not None else 0,
                "ttl_s": lease.ttl_s if lease is not None else 0.0,
                "held_for_s": round(lease.held_for_s(), 3) if lease is not None else 0.0,
                "peers": self.peers.gateways(now_s),
            },
            "fleet": self._settings.fleet,
            "replaced": self.replaced,
            "min_workers": self.config.min_workers,
            "max_workers": self.config.max_workers,
            "warm_pool": self._settings.warm_pool,
            "latency_target_s": self.config.latency_target_s,
            "capacity": {
                "worker_rate_ips": estimate_figures(self.capacity.rate),
                "boot_s": estimate_figures(self.capacity.boot),
            },
            "last_decision": None
            if decision is None
            else {"reason": decision.reason, "figures": plain_figures(decision.figures)},
            "decisions": self.decisions.as_dicts() if with_timeline else [],
            "images": self.meter.images,
            "instance_seconds": round(self.meter.instance_s(now_s), 3),
            "price_per_hour": self.meter.price_per_hour,
            "cost": self.meter.cost(now_s),
            "cost_per_1000": self.meter.cost_per_1000(now_s),
            "timeline": [asdict(point) for point in self.timeline] if with_timeline else [],
        }
