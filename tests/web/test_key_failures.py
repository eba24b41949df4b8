"""Wrong API keys per address: a few a minute, then every key refused until a try refills."""

from __future__ import annotations

from iras.web.key_failures import MAX_ADDRESSES, KeyFailures


def test_ten_wrong_keys_a_minute_then_the_address_waits() -> None:
    failures = KeyFailures(per_min=10)
    for _ in range(10):  # the burst: each try is checked
        assert failures.locked_for_s("10.0.0.1", now_s=0.0) is None
        failures.failed("10.0.0.1", now_s=0.0)
    # Ten tries used at once: one refills every 6 s (60 s / 10).
    assert failures.locked_for_s("10.0.0.1", now_s=0.0) == 6
    assert failures.locked_for_s("10.0.0.1", now_s=3.0) == 3
    assert failures.locked_for_s("10.0.0.2", now_s=3.0) is None  # another address: its own
    assert failures.locked_for_s("10.0.0.1", now_s=6.0) is None  # one try back
    failures.failed("10.0.0.1", now_s=6.0)
    assert failures.locked_for_s("10.0.0.1", now_s=6.0) == 6


def test_guessing_goes_no_faster_than_the_limit() -> None:
    """A guesser who tries whenever allowed gets `per_min` tries a minute, not more."""
    failures = KeyFailures(per_min=10)
    tries, now_s = 0, 0.0
    while now_s < 600:  # ten minutes
        if failures.locked_for_s("x", now_s) is None:
            failures.failed("x", now_s)
            tries += 1
        now_s += 0.5
    assert tries <= 10 + 10 * 10  # the first burst, then ten a minute


def test_a_quiet_minute_restores_the_whole_allowance() -> None:
    failures = KeyFailures(per_min=3)
    for _ in range(3):
        failures.failed("a", now_s=0.0)
    assert failures.locked_for_s("a", now_s=0.0) == 20
    assert failures.locked_for_s("a", now_s=60.0) is None
    for _ in range(3):
        failures.failed("a", now_s=60.0)
    assert failures.locked_for_s("a", now_s=60.0) is not None


def test_zero_is_no_limit() -> None:
    failures = KeyFailures(per_min=0)
    for _ in range(1000):
        failures.failed("a", now_s=0.0)
    assert failures.locked_for_s("a", now_s=0.0) is None


def test_memory_is_bounded_and_forgets_the_least_recent_failure_first() -> None:
    failures = KeyFailures(per_min=1)
    failures.failed("first", now_s=0.0)
    for n in range(MAX_ADDRESSES):
        failures.failed(f"other-{n}", now_s=0.0)
    assert failures.locked_for_s("first", now_s=0.0) is None  # forgotten: let in again
    assert failures.locked_for_s(f"other-{MAX_ADDRESSES - 1}", now_s=0.0) == 60
