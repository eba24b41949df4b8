"""KEDA's `aws-sqs-queue` scaler with its defaults, as the Kubernetes HPA acts on it.

What the defaults are, from the documentation (found with the doc search):

- KEDA's AWS SQS Queue scaler (https://keda.sh/docs/latest/scalers/aws-sqs/):
  `queueLength` 5, the target messages per replica; `activationQueueLength` 0; the
  "actual messages" are ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible
  (in flight) unless `scaleOnInFlight` is false.
- KEDA's ScaledObject (https://keda.sh/docs/latest/reference/scaledobject-spec):
  `pollingInterval` 30 s, `cooldownPeriod` 300 s; and KEDA's "Scaling Deployments"
  (https://keda.sh/docs/2.17/concepts/scaling-deployments/): KEDA itself activates a
  deployment from 0 and deactivates it to 0, the HPA it creates scales between 1 and N.
- The HPA's defaults, as KEDA's ScaledObject schema quotes them
  (advanced.horizontalPodAutoscalerConfig.behavior; https://k8s-schemas-3y7.pages.dev/keda.sh/scaledobject_v1alpha1.html)
  and the Kubernetes API's HorizontalPodAutoscalerBehavior (docs.rs k8s-openapi):
  scale-up without stabilisation, at most doubling or +4 pods per 15 s (the larger);
  scale-down to the highest recommendation of the last 300 s, then any number of pods
  per 15 s; a 10 % tolerance around the target. The HPA syncs every 15 s
  (`--horizontal-pod-autoscaler-sync-period`).
- KEDA's metrics server asks the scaler for the metric on each HPA request
  (kedacore/keda#2282; caching is opt-in, `useCachedMetrics`), so every sync sees the
  queue as it is then.

The model, looking every 15 s (the HPA's sync) from the first look:

- Every other look (30 s, KEDA's poll): active = messages > 0. A fleet at 0 that is
  active goes to 1 (KEDA's activation); a fleet above 0 that has not been active for
  300 s goes to 0.
- Every look with a fleet above 0 (the HPA): recommendation = ceil(messages / 5), or
  the current size when messages / (5 x current) is within 10 % of 1; then the
  stabilisation (no lower than the highest recommendation of the last 300 s, when
  scaling down), the scale-up limit max(2 x current, current + 4), and [1, max].

One pod is one worker instance that takes `boot_s` to take work, as for every other
policy here (as with a node per pod); pods to delete are picked as for the others.
"""

from __future__ import annotations

import math
from collections import deque

from iras.simulation.looks import Look, Periodic
from iras.simulation.types import View

QUEUE_LENGTH = 5
ACTIVATION_QUEUE_LENGTH = 0
POLLING_INTERVAL_S = 30.0
COOLDOWN_PERIOD_S = 300.0
HPA_SYNC_S = 15.0
HPA_SCALE_DOWN_WINDOW_S = 300.0
HPA_TOLERANCE = 0.1


class Keda(Periodic):
    """KEDA + HPA with defaults (module docstring)."""

    name = "keda"

    def __init__(self, max_workers: int) -> None:
        self._max_workers = max_workers
        self._next_poll_s = -math.inf
        self._last_active_s: float | None = None
        self._recommendations: deque[tuple[float, int]] = deque()  # (t, raw recommendation)

    def look(self, view: View) -> Look:
        messages = view.waiting + view.in_flight
        current = view.ready + view.booting
        if view.now_s >= self._next_poll_s:
            self._next_poll_s = view.now_s + POLLING_INTERVAL_S
            active = messages > ACTIVATION_QUEUE_LENGTH
            if active:
                self._last_active_s = view.now_s
            if current == 0 and active:
                return Look(1, HPA_SYNC_S)
            idle_s = math.inf if self._last_active_s is None else view.now_s - self._last_active_s
            if current > 0 and not active and idle_s >= COOLDOWN_PERIOD_S:
                self._recommendations.clear()
                return Look(0, HPA_SYNC_S)
        if current == 0:
            return Look(0, HPA_SYNC_S)  # the HPA does not scale a deployment at 0
        return Look(self._hpa(view.now_s, messages, current), HPA_SYNC_S)

    def _hpa(self, now_s: float, messages: int, current: int) -> int:
        """One HPA sync on an AverageValue external metric (target QUEUE_LENGTH)."""
        if abs(messages / (QUEUE_LENGTH * current) - 1.0) <= HPA_TOLERANCE:
            recommendation = current
        else:
            recommendation = math.ceil(messages / QUEUE_LENGTH)
        self._recommendations.append((now_s, recommendation))
        # The window holds recommendations strictly younger than 300 s (as the HPA cuts it).
        while now_s - self._recommendations[0][0] >= HPA_SCALE_DOWN_WINDOW_S:
            self._recommendations.popleft()
        # Up: no stabilisation (the current recommendation). Down: the window's highest.
        highest = max(r for _, r in self._recommendations)
        desired = min(max(current, recommendation), highest)
        desired = min(desired, max(2 * current, current + 4))
        return max(1, min(self._max_workers, desired))
