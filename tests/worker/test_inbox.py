"""The inbox: bounded room, reservations, and batches taken at size or deadline."""

from __future__ import annotations

import asyncio

import pytest

from iras.worker.inbox import Inbox


async def test_reserve_grants_at_most_the_free_room() -> None:
    inbox: Inbox[int] = Inbox(capacity=12)
    assert await inbox.reserve(10) == 10  # 12 free
    assert await inbox.reserve(10) == 2  # 12 - 10 reserved
    inbox.put([1, 2, 3], reserved=10)  # 3 arrived, 7 places freed
    assert len(inbox) == 3 and inbox.reserved == 2
    assert await inbox.reserve(10) == 7  # 12 - 3 held - 2 reserved


async def test_reserve_waits_for_room() -> None:
    inbox: Inbox[int] = Inbox(capacity=2)
    inbox.put([1, 2], reserved=await inbox.reserve(2))
    waiting = asyncio.create_task(inbox.reserve(10))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    assert await inbox.take_batch(size=1, wait_s=0) == [1]
    assert await asyncio.wait_for(waiting, 1) == 1


async def test_full_batch_is_taken_without_waiting() -> None:
    inbox: Inbox[int] = Inbox(capacity=20)
    inbox.put(list(range(10)), reserved=await inbox.reserve(10))
    batch = await asyncio.wait_for(inbox.take_batch(size=4, wait_s=60), 1)
    assert batch == [0, 1, 2, 3] and len(inbox) == 6


async def test_partial_batch_waits_until_the_deadline_then_goes() -> None:
    inbox: Inbox[int] = Inbox(capacity=20)
    inbox.put([1], reserved=await inbox.reserve(1))
    loop = asyncio.get_running_loop()
    started = loop.time()
    batch = await inbox.take_batch(size=4, wait_s=0.05)
    assert batch == [1]
    assert 0.04 <= loop.time() - started < 1.0


async def test_batch_fills_from_later_arrivals_before_the_deadline() -> None:
    inbox: Inbox[int] = Inbox(capacity=20)
    inbox.put([1], reserved=await inbox.reserve(1))
    taking = asyncio.create_task(inbox.take_batch(size=3, wait_s=5))
    await asyncio.sleep(0.01)
    inbox.put([2, 3], reserved=await inbox.reserve(2))
    assert await asyncio.wait_for(taking, 1) == [1, 2, 3]


async def test_take_waits_for_a_first_item() -> None:
    inbox: Inbox[str] = Inbox(capacity=5)
    taking = asyncio.create_task(inbox.take_batch(size=2, wait_s=0))
    await asyncio.sleep(0.01)
    assert not taking.done()
    inbox.put(["a"], reserved=await inbox.reserve(1))
    assert await asyncio.wait_for(taking, 1) == ["a"]


async def test_release_and_drain() -> None:
    inbox: Inbox[int] = Inbox(capacity=4)
    reserved = await inbox.reserve(4)
    inbox.put([7, 8], reserved=2)
    inbox.release(reserved - 2)
    assert inbox.reserved == 0
    assert inbox.drain() == [7, 8] and len(inbox) == 0


@pytest.mark.parametrize(("items", "reserved"), [([1, 2], 1), ([], 5)])
async def test_put_beyond_a_reservation_is_an_error(items: list[int], reserved: int) -> None:
    inbox: Inbox[int] = Inbox(capacity=4)
    await inbox.reserve(1)
    with pytest.raises(ValueError, match="reservation"):
        inbox.put(items, reserved=reserved)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Inbox(capacity=0)


async def test_a_partial_batch_goes_at_once_when_waiting_is_not_worth_it() -> None:
    inbox: Inbox[int] = Inbox(capacity=10)
    inbox.put([1], reserved=await inbox.reserve(1))

    batch = await asyncio.wait_for(
        inbox.take_batch(size=4, wait_s=60, worth_waiting=lambda: False), 1
    )

    assert batch == [1]
