"""The batcher of SQS calls: ten per call, a lone item at once, company waited for."""

from __future__ import annotations

import asyncio
import logging

import pytest

from iras.web.sender import BatchingSender, SendFailed


class FakeCall:
    """A batch call that records its batches and fails the items it is told to."""

    def __init__(self, refuse: frozenset[str] = frozenset(), error: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.refuse = refuse
        self.error = error

    async def __call__(self, items: list[str]) -> list[int]:
        self.batches.append(items)
        await asyncio.sleep(0)
        if self.error:
            raise ConnectionError("SQS is away")
        return [i for i, item in enumerate(items) if item in self.refuse]


async def test_a_lone_item_goes_at_once_when_no_company_is_coming() -> None:
    call = FakeCall()
    sender = BatchingSender(call, wait_s=10.0, companions=lambda: 0)
    async with asyncio.timeout(1):
        await sender.send(["a"])
    assert call.batches == [["a"]]


async def test_items_wait_for_company_and_go_in_tens() -> None:
    call = FakeCall()
    coming = 2
    sender = BatchingSender(call, wait_s=10.0, companions=lambda: coming)
    first = asyncio.create_task(sender.send([f"a{i}" for i in range(12)]))
    await asyncio.sleep(0.01)
    assert call.batches == [[f"a{i}" for i in range(10)]]  # a full batch does not wait
    coming = 1
    second = asyncio.create_task(sender.send(["b"]))
    await asyncio.sleep(0.01)
    assert len(call.batches) == 1  # one more is still on its way
    coming = 0
    await asyncio.gather(first, second, sender.send(["c"]))
    assert call.batches[1] == ["a10", "a11", "b", "c"]


async def test_waiting_is_bounded_and_a_nudge_ends_it() -> None:
    call = FakeCall()
    coming = 1
    sender = BatchingSender(call, wait_s=0.05, companions=lambda: coming)
    async with asyncio.timeout(1):
        await sender.send(["a"])  # the company never came: sent after wait_s
    waiting = asyncio.create_task(sender.send(["b"]))
    await asyncio.sleep(0.01)
    coming = 0
    sender.nudge()  # the upload that was coming failed
    await asyncio.sleep(0.01)
    assert waiting.done() and call.batches == [["a"], ["b"]]


async def test_failures_reach_the_waiters_and_unwatched_ones_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = BatchingSender(FakeCall(refuse=frozenset({"bad"})), wait_s=0, companions=lambda: 0)
    await sender.send(["good"])
    with pytest.raises(SendFailed, match="refused"):
        await sender.send(["bad"])
    broken = BatchingSender(FakeCall(error=True), 0.01, what="deleting replies")
    with caplog.at_level(logging.WARNING):
        assert broken.add(["x", "y"], wait=False) == []
        await broken.close()
    assert "deleting replies failed: SQS is away (2 entries nobody waits for)" in caplog.text


async def test_a_caller_that_gives_up_withdraws_what_was_not_yet_sent() -> None:
    call = FakeCall()
    sender = BatchingSender(call, wait_s=10.0, companions=lambda: 1)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):  # an upload past its deadline
            await sender.send(["late"])
    await sender.send(["kept"] * 10)  # a full batch goes at once, without the withdrawn
    assert call.batches == [["kept"] * 10]


async def test_a_failed_item_withdraws_its_callers_others() -> None:
    call = FakeCall(refuse=frozenset({"bad"}))
    sender = BatchingSender(call, wait_s=10.0, companions=lambda: 1)
    with pytest.raises(SendFailed):
        await sender.send(["bad"] + [f"x{i}" for i in range(10)])  # "x9" waits in the next
    await sender.close()
    assert call.batches == [["bad"] + [f"x{i}" for i in range(9)]]
