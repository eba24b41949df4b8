"""The upload budget's accounting (pure), its waiting, and one request's hold."""

from __future__ import annotations

import asyncio

import pytest

from iras.web.upload_budget import BudgetLedger, UploadBudget, UploadHold


def test_claims_within_the_capacity_are_granted_at_once_and_counted() -> None:
    ledger = BudgetLedger(100)
    assert ledger.claim(1, 60) == [1]
    assert ledger.claim(2, 40) == [2]  # 60 + 40 = 100: exactly full still fits
    assert (ledger.in_flight_bytes, ledger.high_water_bytes, ledger.waiting) == (100, 100, 0)
    assert ledger.release(60) == []
    assert (ledger.in_flight_bytes, ledger.high_water_bytes) == (40, 100)


def test_a_claim_that_does_not_fit_waits_until_a_release_makes_room() -> None:
    ledger = BudgetLedger(100)
    ledger.claim(1, 70)
    assert ledger.claim(2, 50) == []  # 70 + 50 > 100
    assert ledger.waiting == 1
    assert ledger.release(10) == []  # 60 + 50 > 100: still no room
    assert ledger.release(20) == [2]  # 40 + 50 <= 100
    assert (ledger.in_flight_bytes, ledger.waiting, ledger.high_water_bytes) == (90, 0, 90)


def test_first_come_first_served_a_small_claim_does_not_overtake_a_waiting_big_one() -> None:
    ledger = BudgetLedger(100)
    ledger.claim(1, 80)
    assert ledger.claim(2, 60) == []  # waits: 80 + 60 > 100
    assert ledger.claim(3, 10) == []  # would fit (90), but 2 came first
    # 80 released: 2 (60) fits, then 3 (60 + 10 = 70) does too, in their order.
    assert ledger.release(80) == [2, 3]
    assert ledger.in_flight_bytes == 70


def test_a_claim_larger_than_the_budget_is_granted_alone_and_holds_up_nobody() -> None:
    ledger = BudgetLedger(100)
    ledger.claim(1, 30)
    assert ledger.claim(2, 250) == []  # can never fit: waits for nothing in flight
    assert ledger.claim(3, 50) == [3]  # not held up by it: 30 + 50 <= 100
    assert ledger.release(30) == []  # 3 still holds 50
    assert ledger.release(50) == [2]  # nothing in flight: granted, alone
    assert (ledger.in_flight_bytes, ledger.high_water_bytes) == (250, 250)
    assert ledger.claim(4, 1) == []  # and while it holds more than all, nobody else fits
    assert ledger.release(250) == [4]


def test_a_chunked_body_alone_may_grow_past_the_budget_but_not_beside_others() -> None:
    ledger = BudgetLedger(100)
    ledger.claim(1, 90)  # request A: 90 bytes of chunks so far
    assert ledger.claim(2, 20, held=90) == [2]  # A alone: 110 in flight, granted
    assert ledger.claim(4, 5, held=0) == []  # B's first chunk: A holds it all
    assert ledger.release(110) == [4]


def test_a_withdrawn_claim_stops_holding_up_the_queue() -> None:
    ledger = BudgetLedger(100)
    ledger.claim(1, 50)
    assert ledger.claim(2, 80) == []
    assert ledger.claim(3, 40) == []  # behind 2
    assert ledger.withdraw(2) == [3]  # 2 gave up: 50 + 40 <= 100
    assert ledger.withdraw(99) == []  # an unknown ticket is no error


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ledger: ledger.claim(1, -1), "negative"),
        (lambda ledger: ledger.release(1), "cannot release 1 of 0"),
        (lambda ledger: BudgetLedger(0), "at least 1"),
    ],
)
def test_misuse_says_what_was_wrong(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(BudgetLedger(10))  # type: ignore[operator]


def test_a_ticket_cannot_wait_twice() -> None:
    ledger = BudgetLedger(10)
    ledger.claim(1, 10)
    ledger.claim(2, 5)
    with pytest.raises(ValueError, match="already waiting"):
        ledger.claim(2, 5)


async def test_take_waits_for_room_and_gets_it_when_released() -> None:
    budget = UploadBudget(100, wait_s=30)
    assert await budget.take(80)
    waiting = asyncio.create_task(budget.take(50))
    await asyncio.sleep(0)
    assert not waiting.done() and budget.ledger.waiting == 1
    budget.release(80)
    assert await asyncio.wait_for(waiting, 5)
    assert budget.ledger.in_flight_bytes == 50


async def test_take_gives_up_after_its_wait_with_nothing_charged() -> None:
    budget = UploadBudget(100, wait_s=0.05)
    assert await budget.take(80)
    assert not await budget.take(50)
    assert (budget.ledger.in_flight_bytes, budget.ledger.waiting) == (80, 0)
    budget.release(80)
    assert budget.ledger.in_flight_bytes == 0


async def test_a_cancelled_waiter_leaves_nothing_behind_granted_or_not() -> None:
    budget = UploadBudget(100, wait_s=30)
    assert await budget.take(100)
    waiting = asyncio.create_task(budget.take(10))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert budget.ledger.waiting == 0
    # Granted, then cancelled before it resumed: the bytes go back.
    granted_late = asyncio.create_task(budget.take(10))
    await asyncio.sleep(0)
    budget.release(100)  # grants it (charged 10)
    granted_late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await granted_late
    assert budget.ledger.in_flight_bytes == 0


async def test_a_hold_gives_back_everything_it_took_once() -> None:
    budget = UploadBudget(100, wait_s=0.05)
    hold = UploadHold(budget)
    assert await hold.take(30) and await hold.take(20) and await hold.take(0)
    assert (hold.held_bytes, budget.ledger.in_flight_bytes) == (50, 50)
    other = UploadHold(budget)
    assert not await other.take(60)  # 50 + 60 > 100, and not alone
    assert "busy: 50 of its 100 bytes" in other.refusal_detail(60)
    assert "IRAS_UPLOAD_BUDGET_BYTES" in other.refusal_detail(60)
    hold.release()
    hold.release()
    assert budget.ledger.in_flight_bytes == 0
    with pytest.raises(RuntimeError, match="released"):
        await hold.take(1)
    assert "larger than the gateway's budget" in other.refusal_detail(101)
