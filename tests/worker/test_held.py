"""Held messages: which leases need extending, by the arithmetic of the clock."""

from __future__ import annotations

import pytest

from iras.worker.held import HeldMessages


@pytest.mark.parametrize(
    ("received_at", "now", "margin_s", "due"),
    [
        (0.0, 0.0, 5.0, False),  # hidden until 10, 10 s left > 5
        (0.0, 4.9, 5.0, False),  # 5.1 s left
        (0.0, 5.0, 5.0, True),  # 5 s left: extend now
        (0.0, 12.0, 5.0, True),  # already expired: extend anyway (may fail, harmless)
        (3.0, 7.0, 5.0, False),  # hidden until 13, 6 s left
    ],
)
def test_due_for_extension(received_at: float, now: float, margin_s: float, due: bool) -> None:
    held = HeldMessages()
    held.add("h", received_at, visibility_timeout_s=10)
    assert held.due_for_extension(now, margin_s) == (["h"] if due else [])


def test_extension_moves_the_lease_forward() -> None:
    held = HeldMessages()
    held.add("a", 0.0, 10)
    held.add("b", 4.0, 10)
    assert held.due_for_extension(6.0, 5.0) == ["a"]  # a ends at 10, b at 14
    held.extended("a", 6.0, 10)  # a now ends at 16
    assert held.due_for_extension(9.0, 5.0) == ["b"]
    held.discard("b")
    held.extended("b", 9.0, 10)  # extending a message no longer held does nothing
    assert "b" not in held and len(held) == 1
