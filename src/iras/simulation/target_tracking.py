"""AWS target tracking on SQS backlog per instance, with the alarms AWS creates for it.

What AWS documents (found with the doc search):

- "Scaling policy based on Amazon SQS" (EC2 Auto Scaling user guide,
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-using-sqs-queue.html): the
  metric is the backlog per instance, ApproximateNumberOfMessages (visible messages
  only) / instances, and its target is the acceptable backlog per instance: the
  acceptable latency / the processing time of one message, i.e. latency target x one
  worker's rate (10 s x 15 images/s = 150).
- "How target tracking scaling works" (Application Auto Scaling user guide,
  https://docs.aws.amazon.com/autoscaling/application/userguide/target-tracking-scaling-policy-overview.html):
  above the target it adds capacity in proportion to the metric, as fast as it can;
  it removes capacity only when the metric is far enough below the target ("usually
  more than 10 % lower"), and never so much that the metric would rise above it.
- "Set the default instance warmup" (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-default-instance-warmup.html)
  and PutScalingPolicy's EstimatedInstanceWarmup: instances in warm-up count toward
  the current capacity when scaling out, and block scale-in until warmed up; without a
  default instance warmup the warm-up falls back to the group's default cooldown (300 s).

The alarms target tracking creates evaluate 1-minute datapoints: the high one alarms
after 3 breaching datapoints in 3 minutes, the low one after 15 in 15 minutes. (That is
what the console shows for them; the stored documentation I searched does not spell
the counts out.)

The model, looking every 60 s from the first look:

- datapoint = visible messages at that instant / max(1, instances), instances = all
  launched and not yet terminated (warming ones included): with no instance the metric
  is the backlog itself, otherwise an empty group could never scale out (that is an
  assumption; AWS's docs do not say how 0 instances divide);
- 3 datapoints in a row above the target: capacity = ceil(max(1, current) x datapoint
  / target), never less than now;
- 15 datapoints in a row below 90 % of the target and no instance launched in the last
  300 s: capacity = ceil(current x datapoint / target), never more than now (an idle
  queue gives 0);
- clamped to [0, max]. CloudWatch's own delay (a datapoint is usable a minute or two
  after its minute) is left out, which favours target tracking.

Two consequences of the metric, not of the model: with a minimum of 0 (as for every
policy here), a group at 0 launches nothing for a backlog below one target's worth, so
the last images of a trace can wait for ever (the report counts them unanswered); and a
queue its workers keep empty reads 0, so after 15 such minutes the group scales in to
0 in the middle of steady traffic (visible in the diurnal trace).
"""

from __future__ import annotations

import math
from collections import deque

from iras.simulation.looks import Look, Periodic
from iras.simulation.types import View

PERIOD_S = 60.0
HIGH_DATAPOINTS = 3
LOW_DATAPOINTS = 15
LOW_THRESHOLD = 0.9  # of the target
WARMUP_S = 300.0


class TargetTracking(Periodic):
    """Target tracking on backlog per instance (module docstring)."""

    name = "target-tracking"

    def __init__(self, target_backlog: float, max_workers: int) -> None:
        if not target_backlog > 0:
            raise ValueError(f"the target backlog per instance must be > 0, got {target_backlog}")
        self.target_backlog = target_backlog
        self._max_workers = max_workers
        self._datapoints: deque[float] = deque(maxlen=LOW_DATAPOINTS)

    def look(self, view: View) -> Look:
        current = view.ready + view.booting
        datapoint = view.waiting / max(1, current)
        self._datapoints.append(datapoint)
        points = list(self._datapoints)
        desired = current
        target = self.target_backlog
        if len(points) >= HIGH_DATAPOINTS and all(p > target for p in points[-HIGH_DATAPOINTS:]):
            desired = max(current, math.ceil(max(1, current) * datapoint / target))
        elif (
            len(points) == LOW_DATAPOINTS
            and all(p < LOW_THRESHOLD * target for p in points)
            and all(age >= WARMUP_S for age in view.ages_s)
        ):
            desired = min(current, math.ceil(current * datapoint / target))
        return Look(max(0, min(self._max_workers, desired)), PERIOD_S)
