"""The WebSocket caps, as bookkeeping: per client and in all, and what a refusal says."""

from __future__ import annotations

from iras.web.sockets import CLOSE_GATEWAY_FULL, CLOSE_TOO_MANY_FOR_CLIENT, SocketSlots


def test_a_client_over_its_share_is_refused_and_others_are_not() -> None:
    slots = SocketSlots(max_total=10, max_per_client=2)
    assert slots.take("alice") is None and slots.take("alice") is None
    refusal = slots.take("alice")
    assert refusal is not None
    assert refusal.close_code == CLOSE_TOO_MANY_FOR_CLIENT == 4429
    assert refusal.code == "too_many_websockets"
    assert "IRAS_MAX_WEBSOCKETS_PER_CLIENT" in refusal.detail and "2" in refusal.detail
    assert slots.take("bob") is None
    assert slots.open_for("alice") == 2 and len(slots) == 3


def test_the_gateway_refuses_beyond_its_total() -> None:
    slots = SocketSlots(max_total=2, max_per_client=5)
    assert slots.take("alice") is None and slots.take("bob") is None
    refusal = slots.take("carol")
    assert refusal is not None and refusal.close_code == CLOSE_GATEWAY_FULL == 4503
    assert refusal.code == "gateway_busy" and "IRAS_MAX_WEBSOCKETS" in refusal.detail


def test_a_socket_given_back_makes_room_and_a_refused_one_took_none() -> None:
    slots = SocketSlots(max_total=2, max_per_client=1)
    assert slots.take("alice") is None
    assert slots.take("alice") is not None  # refused: counts nothing
    assert len(slots) == 1
    slots.give_back("alice")
    slots.give_back("alice")  # more than it took: ignored
    assert len(slots) == 0 and slots.open_for("alice") == 0
    assert slots.take("alice") is None


def test_zero_means_no_cap() -> None:
    slots = SocketSlots(max_total=0, max_per_client=0)
    assert all(slots.take("alice") is None for _ in range(100))
