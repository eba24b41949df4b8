"""How a stopping worker spends its time: one deadline for the whole stop.

`IRAS_SHUTDOWN_GRACE_S` bounds the stop, not each of its steps: the deadline is taken
once, when the stop begins, and every step (receives in flight, the batches in hand,
their publishing) waits at most what remains of it, then cancels what is still running.
So a container or unit that allows the grace plus a margin (`docker run --stop-timeout`,
systemd's `TimeoutStopSec`) does not have to kill a stopping worker. (A batch left
classifying is cancelled; its thread, a daemon thread (`iras.runtime.in_daemon_thread`),
runs on without holding up the process's exit, and its requests come back after their
visibility timeout.)

One write is let past the deadline: handing back the messages the worker never started
(`HAND_BACK_RESERVE_S`). See `Deadline.hand_back_s` for why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from typing import Any

#: Beyond the long-poll wait, how long a stopping worker waits for its receives to return.
RECEIVE_MARGIN_S = 2.0
#: The time kept for the hand-back of unstarted messages, however little grace remains.
HAND_BACK_RESERVE_S = 2.0


class Deadline:
    """A moment `budget_s` after the deadline is made; a stop's steps wait for what remains."""

    def __init__(self, budget_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._at_s = clock() + budget_s

    def remaining_s(self, keep_s: float = 0.0) -> float:
        """Time left before the deadline, less `keep_s` kept for a later step; never negative."""
        return max(0.0, self._at_s - keep_s - self._clock())

    def receive_wait_s(self, long_poll_s: float) -> float:
        """How long to wait for the receives in flight: a whole long poll and its margin,
        within the deadline less the hand-back's reserve (the hand-back comes after).

        A grace shorter than that (`receive_wait_s` + 4 s) cuts the receives short, and
        a long poll cut short still runs in SQS: what it takes then, messages handed
        back included, stays hidden for its visibility timeout.
        """
        return min(long_poll_s + RECEIVE_MARGIN_S, self.remaining_s(keep_s=HAND_BACK_RESERVE_S))

    def hand_back_s(self) -> float:
        """How long the hand-back of unstarted messages may take: what remains, and at
        least `HAND_BACK_RESERVE_S` even when the deadline has passed.

        It is the one write of a stop that others wait for: a message not handed back
        (visibility 0) stays hidden from the whole fleet for its visibility timeout
        (minutes, on a real queue), while the call itself takes milliseconds. So a short
        grace (even 0) still hands back; only a hand-back that AWS does not answer within
        the reserve is given up, and those messages come back after their timeout, as
        from a worker that died.
        """
        return max(self.remaining_s(), HAND_BACK_RESERVE_S)


async def finish_or_cancel(tasks: Collection[asyncio.Task[Any]], timeout_s: float) -> int:
    """Let `tasks` run up to `timeout_s`, then cancel those still running; return how
    many were cancelled. It returns once every task has ended.

    Cancelling the caller while it waits does not cancel `tasks` (`asyncio.wait` never
    does): a step such as the hand-back, spawned as a task, completes even when the stop
    around it is itself cancelled (a caller's timeout around `Worker.run`), as long as the
    event loop runs.
    """
    tasks = list(tasks)  # a snapshot: tasks may leave their set as they end
    if not tasks:
        return 0
    _, late = await asyncio.wait(tasks, timeout=timeout_s)
    for task in late:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return len(late)
