"""A stop's one deadline: what each step may wait, and tasks let finish or cancelled."""

from __future__ import annotations

import asyncio

import pytest

from iras.worker.stopping import (
    HAND_BACK_RESERVE_S,
    RECEIVE_MARGIN_S,
    Deadline,
    finish_or_cancel,
)


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.mark.parametrize(
    ("grace_s", "elapsed_s", "remaining_s", "receive_wait_s", "hand_back_s"),
    [
        # Just begun: a whole 20 s long poll + 2 s margin (within 30 - 2 kept back).
        (30.0, 0.0, 30.0, 22.0, 30.0),
        # 25 s in, 5 s left: receives 5 - 2 = 3 s, the hand-back all 5 s.
        (30.0, 25.0, 5.0, 3.0, 5.0),
        # 29 s in, 1 s left, less than the reserve: receives 0, the hand-back its 2 s.
        (30.0, 29.0, 1.0, 0.0, 2.0),
        # Past the deadline: nothing remains, and the hand-back still has its 2 s.
        (30.0, 40.0, 0.0, 0.0, 2.0),
        # No grace: no step waits, except the hand-back.
        (0.0, 0.0, 0.0, 0.0, 2.0),
    ],
)
def test_each_step_waits_for_what_remains_of_one_deadline(
    grace_s: float, elapsed_s: float, remaining_s: float, receive_wait_s: float, hand_back_s: float
) -> None:
    assert (RECEIVE_MARGIN_S, HAND_BACK_RESERVE_S) == (2.0, 2.0)  # the table's arithmetic
    clock = FakeClock()
    deadline = Deadline(grace_s, clock)
    clock.now_s += elapsed_s
    assert deadline.remaining_s() == remaining_s
    assert deadline.receive_wait_s(long_poll_s=20) == receive_wait_s
    assert deadline.hand_back_s() == hand_back_s


async def test_the_quick_finish_and_the_late_are_cancelled() -> None:
    quick = asyncio.create_task(asyncio.sleep(0.01, result="done"))
    late = asyncio.create_task(asyncio.sleep(60))
    assert await finish_or_cancel({quick, late}, timeout_s=0.5) == 1
    assert quick.result() == "done"
    assert late.cancelled()


async def test_nothing_to_wait_for_returns_at_once() -> None:
    assert await asyncio.wait_for(finish_or_cancel([], timeout_s=60), 1) == 0


async def test_a_cancelled_wait_leaves_its_tasks_running() -> None:
    """What lets a hand-back finish when the stop around it is itself cancelled."""
    answered = asyncio.Event()
    hand_back = asyncio.create_task(answered.wait())
    waiting = asyncio.create_task(finish_or_cancel([hand_back], timeout_s=60))
    await asyncio.sleep(0)  # one turn of the loop: `waiting` is now in its wait
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not hand_back.done()
    answered.set()
    assert await asyncio.wait_for(hand_back, 1) is True
