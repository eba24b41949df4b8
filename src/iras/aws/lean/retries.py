"""botocore's standard retry mode for the lean calls, made of botocore's own pieces.

Which failures are retried, how long to wait, and when to stop are botocore's
decisions, so that the lean path and the botocore client behave alike and follow
botocore when it changes: the retry conditions (`StandardRetryConditions`: the
attempt budget, the transient codes and statuses, the throttling codes, the errors the
service model marks retryable), the retry quota (`RetryQuotaChecker` on a
`RetryQuota`: 500 units, 5 a retry, 10 a retried timeout, given back on success, one
per client as botocore has), and the backoff (`ExponentialBackoff`: a uniform draw
below 2^(attempt-1) s, at most 20 s). `RetryHandler` puts them together as it does for
botocore's clients; this module only hands it a failure in the shape botocore's event
hands it (`RetryEventAdapter`'s arguments).

What it does not take from botocore: the event system (it is called directly, once per
failed attempt), and adaptive mode's client-side rate limiting (IRAS uses standard).
"""

from __future__ import annotations

from typing import Any

from botocore.model import ServiceModel
from botocore.retries.quota import RetryQuota
from botocore.retries.standard import (
    ExponentialBackoff,
    RetryEventAdapter,
    RetryHandler,
    RetryPolicy,
    RetryQuotaChecker,
    StandardRetryConditions,
)

from iras.aws.lean.http1 import Answer

#: One call's retry state, botocore's `request_dict["context"]`: the quota it holds.
CallContext = dict[str, Any]


class StandardRetries:
    """The retry decisions of one client (one service), as botocore's standard mode
    makes them: `delay_s` after each failed attempt, `succeeded` after a success."""

    def __init__(
        self,
        service_model: ServiceModel,
        max_attempts: int,
        *,
        quota: RetryQuota | None = None,
        backoff: ExponentialBackoff | None = None,
    ) -> None:
        self.service_model = service_model
        self.quota = quota if quota is not None else RetryQuota()
        self.backoff = backoff if backoff is not None else ExponentialBackoff()
        self._quota_checker = RetryQuotaChecker(self.quota)
        self._handler = RetryHandler(
            retry_policy=RetryPolicy(StandardRetryConditions(max(1, max_attempts)), self.backoff),
            retry_event_adapter=RetryEventAdapter(),
            retry_quota=self._quota_checker,
        )

    def delay_s(
        self,
        operation: str,
        attempts: int,
        context: CallContext,
        *,
        answer: Answer | None = None,
        error_response: dict[str, Any] | None = None,
        caught: Exception | None = None,
    ) -> float | None:
        """Seconds to wait before the next attempt of `operation`, or None to give up.

        `attempts` made so far (1 after the first). The attempt failed with an error
        `answer`, read as `error_response` (the response of botocore's `ClientError`),
        or with no answer, raising `caught` (a connection error). `error_response` gets
        botocore's `MaxAttemptsReached` or `RetryQuotaReached` in its
        `ResponseMetadata` when either ends the call.
        """
        delay: float | None = self._handler.needs_retry(
            response=None if answer is None else (answer, error_response),
            attempts=attempts,
            operation=self.service_model.operation_model(operation),
            caught_exception=caught,
            request_dict={"context": context},
        )
        return delay

    def succeeded(self, context: CallContext, answer: Answer) -> None:
        """Give back to the quota what the call took (or one unit for a first-time success)."""
        self._quota_checker.release_retry_quota(context, answer)
