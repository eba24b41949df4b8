"""Retry with jittered backoff while AWS is away: the one retry loop of IRAS, on stamina.

Every place that waits for AWS to come back calls `retry_while_away` with one step (a
connect, a receive, a scaler round): the step is tried again, after
a jittered wait that doubles from `wait_initial_s` up to `wait_max_s`, until it succeeds,
until it fails with an error that is not retried (raised at once), or until `attempts`
or `timeout_s` run out (the last error is raised). Neither bound given: it retries for
ever, which is what the loops that must outlive any outage want (the reply listener,
the queue sampler, the scaler): they run the step through here, then their normal period.

The waits are stamina's: the n-th (from 0) is `wait_initial_s * 2**n` plus up to
`wait_initial_s` of jitter, capped at `wait_max_s`. The timeout is stamina's too: no
retry is scheduled once `timeout_s` has passed, so the last attempt may start up to one
wait (at most `wait_max_s`) after it. stamina's test switch applies: `stamina.set_testing(True,
attempts=...)` turns the waits off and bounds the attempts, for tests of failure paths
(note that it bounds the loops meant to run for ever too; tests that need those to
outlive an outage run with real waits).

The success path does not go through stamina: the first attempt is a plain call, and
only its failure is handed to stamina's `retry_context`, which judges it (as its first
attempt), waits and retries. Measured on the success path, an async call that returns
at once, best of 7 runs, Python 3.11 on uvloop (asyncio alike): 0.15 us in the
hand-written loops this replaced, 16 us through `retry_context`, 0.5 us through
`retry_while_away` (0.16 us of it the call itself). The lean path makes about ten calls
per image: 160 us per image through stamina. (Its single calls are retried by
botocore's standard-mode rules instead, `iras.aws.lean.retries`: the same decisions as
the botocore client's, quota and 20 s cap included.)

Logging: one WARNING per failure that is retried, in the caller's words
("receiving replies failed (<error>); retrying"), with a traceback only for errors the
caller did not expect (`traceback_unless`); the wait is not in it, as stamina draws it
after the predicate that logs has answered. The failure given up on is not logged here:
it is raised, and whoever catches it reports it. stamina's own instrumentation is
switched off on import (`set_on_retry_hooks([])`), deliberately: its logging hook would
write a second, context-free WARNING ("stamina.retry_scheduled") for every line above;
its Prometheus hook registers `stamina_retries_total` in prometheus_client's default
registry, which IRAS does not serve (the gateway's `/metrics` has a registry of its
own), labelled by retry number, a series more for every retry of a loop that retries
for ever. IRAS uses stamina in no other way, so nothing else loses those hooks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import stamina

T = TypeVar("T")

#: What is retried: exception types, or a predicate that takes the error and says.
RetryOn = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]

log = logging.getLogger(__name__)

stamina.instrumentation.set_on_retry_hooks([])  # why: see the module docstring


async def retry_while_away(
    step: Callable[[], Awaitable[T]],
    *,
    on: RetryOn,
    failed: str | None = None,
    logger: logging.Logger = log,
    traceback_unless: tuple[type[Exception], ...] | None = None,
    attempts: int | None = None,
    timeout_s: float | None = None,
    wait_initial_s: float = 0.2,
    wait_max_s: float = 10.0,
) -> T:
    """`await step()`, retried on the errors `on` names (or approves) until it succeeds.

    `failed` says what failed, for the one log line per retried failure (None: the
    retries are silent); `traceback_unless` lists the errors logged without a traceback
    (None: every one is). `attempts` counts every call of `step`, the first one too;
    `timeout_s` counts from the first failure. With neither, it never gives up.
    """
    try:
        return await step()  # the success path: one plain call, see the module docstring
    except Exception as error:  # judged by stamina below, through `should_retry`
        first: Exception | None = error
    retryable = _as_predicate(on)
    started_s = time.monotonic()
    failures = 0

    def should_retry(error: BaseException) -> bool:
        nonlocal failures
        failures += 1
        # stamina hands over whatever ended the attempt: a cancellation is never retried.
        if not isinstance(error, Exception) or not retryable(error):
            return False
        out_of_attempts = attempts is not None and failures >= attempts
        out_of_time = timeout_s is not None and time.monotonic() - started_s >= timeout_s
        if failed is not None and not (out_of_attempts or out_of_time):
            quiet = traceback_unless is None or isinstance(error, traceback_unless)
            # The error itself, not True: stamina asks outside the `except` that caught it.
            logger.warning("%s (%r); retrying", failed, error, exc_info=None if quiet else error)
        return True

    async for attempt in stamina.retry_context(
        on=should_retry,
        attempts=attempts,
        timeout=timeout_s,
        wait_initial=wait_initial_s,
        wait_max=wait_max_s,
        wait_jitter=wait_initial_s,
    ):
        with attempt:
            if first is not None:  # stamina's first attempt is the failure already seen
                seen, first = first, None
                raise seen
            return await step()
    raise AssertionError("stamina's attempts end by returning or raising")  # pragma: no cover


def _as_predicate(on: RetryOn) -> Callable[[Exception], bool]:
    if isinstance(on, type | tuple):
        types = on
        return lambda error: isinstance(error, types)
    return on
