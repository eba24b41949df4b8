"""`/readyz`: whether this gateway can store, queue and receive replies, asked cheaply.

Ready means three things, each checked, not assumed from the start-up having finished:

- the request queue answers (GetQueueAttributes, whose depths the answer reports);
- the output bucket answers (GetObject of a key that never exists: `NoSuchKey` is S3
  answering, with the permissions the web tier has);
- the reply listener is alive and has received recently: its task has not ended, and a
  long poll has come back within `receive_wait_s` plus `LISTENER_SLACK_S` (the polls
  return at least that often when they work; the slack covers the listener's backoff
  after a brief outage).

The endpoint is public (a load balancer has no key) and so must cost AWS nothing per hit:
an answer is reused for `ANSWER_MAX_AGE_S`, and hits that come while a check runs share
it (`SharedAnswer`): however hard `/readyz` is polled, a gateway makes at most two AWS
calls a second for it. A failed answer is reused the same way, or an outage would turn
the poller into a hammer. The AWS checks run side by side, each within
`IRAS_AWS_DEADLINE_S`.

The deeper check, `?deep=1`, sends a golden image through the fleet: `iras.web.golden`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from botocore.exceptions import ClientError

from iras.aws.errors import AWS_ERRORS
from iras.messages import result_key
from iras.web.errors import ApiError

if TYPE_CHECKING:
    from iras.web.gateway import Gateway

#: How long one answer of `/readyz` is reused.
ANSWER_MAX_AGE_S = 1.0
#: How long past its long-poll wait the reply listener may go without a receive coming back.
LISTENER_SLACK_S = 15.0
#: The key probed in the output bucket: not a request id (32 hex digits), so never a result.
STORAGE_PROBE_ID = "readyz-probe"
#: Seconds a client is told to wait before asking again.
RETRY_AFTER_S = 2

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class NotReady:
    """Why the gateway is not ready: the error code and the detail of the 503."""

    code: str
    detail: str

    def as_api_error(self) -> ApiError:
        return ApiError(503, self.code, self.detail, {"Retry-After": str(RETRY_AFTER_S)})


class SharedAnswer(Generic[T]):
    """The answer of `check`, reused for `max_age_s` after it came; concurrent askers while
    a check runs all get that one check's answer. An exception is shared, not reused."""

    def __init__(
        self,
        check: Callable[[], Awaitable[T]],
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._max_age_s = max_age_s
        self._clock = clock
        self._answer: tuple[float, T] | None = None
        self._running: asyncio.Future[T] | None = None

    async def get(self) -> T:
        if self._answer is not None and self._clock() - self._answer[0] < self._max_age_s:
            return self._answer[1]
        if self._running is None:
            self._running = asyncio.ensure_future(self._run())
            self._running.add_done_callback(_retrieve)
        # Shielded: an asker that goes away does not cancel the check the others wait on.
        return await asyncio.shield(self._running)

    async def _run(self) -> T:
        try:
            answer = await self._check()
            self._answer = (self._clock(), answer)
            return answer
        finally:
            self._running = None


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a shared check's exception seen: every asker may have gone before it came."""
    if not future.cancelled():
        future.exception()


class ListenerWatch:
    """Whether the reply listener is alive and its long polls come back."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._task: asyncio.Future[Any] | None = None
        self._last_receive_s = 0.0

    def watch(self, task: asyncio.Future[Any]) -> None:
        """The listener started as `task` (which counts as a receive: it just began)."""
        self._task, self._last_receive_s = task, self._clock()

    def received(self) -> None:
        """A receive came back (with replies or empty)."""
        self._last_receive_s = self._clock()

    def problem(self, wait_s: float) -> str | None:
        """What is wrong with the listener, whose receives wait up to `wait_s`; None if nothing."""
        if self._task is None:
            return "the reply listener has not started"
        if self._task.done():
            return "the reply listener has stopped: replies are not received (restart the gateway)"
        silent_s = self._clock() - self._last_receive_s
        if silent_s > wait_s + LISTENER_SLACK_S:
            return (
                f"no receive on the reply queue has come back for {silent_s:.0f} s (each "
                f"returns within {wait_s:g} s when AWS answers): replies are not being received"
            )
        return None


class Readiness:
    """The gateway's readiness, checked at most once per `ANSWER_MAX_AGE_S`."""

    def __init__(self, gateway: Gateway, clock: Callable[[], float] = time.monotonic) -> None:
        self._gateway = gateway
        self._answer = SharedAnswer(self._check, ANSWER_MAX_AGE_S, clock)

    async def answer(self) -> dict[str, Any] | NotReady:
        """The body of a 200, or why not."""
        return await self._answer.get()

    async def _check(self) -> dict[str, Any] | NotReady:
        gateway = self._gateway
        url = gateway.request_queue_url
        if not gateway.ready.is_set() or url is None:
            return NotReady("not_ready", gateway.not_ready_reason)
        problem = gateway.reply_listener.problem(gateway.settings.receive_wait_s)
        if problem is not None:
            return NotReady("not_ready", problem)
        depth, storage = await asyncio.gather(
            self._within_deadline(gateway.aws.messages.depth(url), "the request queue"),
            self._within_deadline(self._probe_storage(), "the output bucket"),
        )
        for outcome in (depth, storage):
            if isinstance(outcome, NotReady):
                return outcome
        assert isinstance(depth, tuple)
        visible, in_flight = depth
        return {
            "status": "ready",
            "gateway": gateway.id,
            "backlog": visible,
            "in_flight": in_flight,
        }

    async def _probe_storage(self) -> None:
        """S3 answers for the output bucket: `NoSuchKey` (the probe never exists) is fine."""
        settings = self._gateway.settings
        try:
            await self._gateway.aws.objects.get(
                settings.records_bucket, result_key(settings, STORAGE_PROBE_ID)
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchKey":
                raise

    async def _within_deadline(self, call: Awaitable[T], what: str) -> T | NotReady:
        deadline_s = self._gateway.settings.aws_deadline_s
        try:
            async with asyncio.timeout(deadline_s):
                return await call
        except TimeoutError:
            detail = f"{what} did not answer within {deadline_s:g} s (IRAS_AWS_DEADLINE_S)"
            return NotReady("aws_unavailable", detail)
        except ClientError as error:
            return NotReady("aws_unavailable", f"{what} answered with an error: {error}")
        except AWS_ERRORS as error:
            return NotReady("aws_unavailable", f"{what} did not answer: {error}")
