"""Per-client limits, decided with a fake clock."""

from __future__ import annotations

from iras.web.client_limits import ClientLimits


def test_a_burst_is_let_in_then_the_rate_applies() -> None:
    limits = ClientLimits(rate_per_s=2, burst=3, max_uploads=0)
    assert [limits.admit("a", 0.0, upload=False) for _ in range(3)] == [None] * 3
    refusal = limits.admit("a", 0.0, upload=False)
    assert refusal is not None and refusal.code == "rate_limited"
    assert refusal.retry_after_s == 1
    assert limits.admit("a", 0.5, upload=False) is None  # one token back after 0.5 s
    assert limits.admit("a", 0.5, upload=False) is not None


def test_one_client_does_not_spend_anothers_budget() -> None:
    limits = ClientLimits(rate_per_s=1, burst=1, max_uploads=0)
    assert limits.admit("greedy", 0.0, upload=False) is None
    assert limits.admit("greedy", 0.0, upload=False) is not None
    assert limits.admit("polite", 0.0, upload=False) is None


def test_uploads_in_progress_are_capped_until_they_finish() -> None:
    limits = ClientLimits(rate_per_s=0, burst=1, max_uploads=2)
    assert limits.admit("a", 0.0, upload=True) is None
    assert limits.admit("a", 0.0, upload=True) is None
    refusal = limits.admit("a", 0.0, upload=True)
    assert refusal is not None and refusal.code == "too_many_uploads"
    assert limits.admit("a", 0.0, upload=False) is None  # lookups are not uploads
    assert limits.admit("b", 0.0, upload=True) is None
    limits.finished("a")
    assert limits.admit("a", 0.0, upload=True) is None


def test_zero_means_no_limit() -> None:
    limits = ClientLimits(rate_per_s=0, burst=1, max_uploads=0)
    assert all(limits.admit("a", 0.0, upload=True) is None for _ in range(1000))


def test_a_refused_upload_does_not_count_as_in_progress() -> None:
    limits = ClientLimits(rate_per_s=1, burst=1, max_uploads=1)
    assert limits.admit("a", 0.0, upload=False) is None  # spends the only token
    assert limits.admit("a", 0.0, upload=True) is not None  # refused by the rate
    assert limits.admit("a", 1.0, upload=True) is None  # so the cap still has room


def test_a_charge_beyond_the_bucket_is_a_debt_paid_back_at_the_rate() -> None:
    limits = ClientLimits(rate_per_s=10, burst=20, max_uploads=0)
    assert limits.admit("a", 0.0, upload=False) is None  # 19 tokens left
    limits.charge("a", 0.0, 501)  # a rebuilt 500-image job: 501 GETs on its behalf
    refusal = limits.admit("a", 0.0, upload=False)
    assert refusal is not None and refusal.code == "rate_limited"
    assert refusal.retry_after_s == 49  # (1 - (19 - 501)) / 10 s, rounded up
    assert limits.admit("a", 48.0, upload=False) is not None
    assert limits.admit("a", 48.4, upload=False) is None  # paid back (refusals cost nothing)
    assert limits.admit("b", 0.0, upload=False) is None  # another client owes nothing


def test_a_debt_is_capped_and_no_rate_means_no_charge() -> None:
    limits = ClientLimits(rate_per_s=10, burst=20, max_uploads=0)
    limits.charge("a", 0.0, 1_000_000)
    refusal = limits.admit("a", 0.0, upload=False)
    assert refusal is not None and refusal.retry_after_s == 61  # MAX_DEBT_S of the rate, and 1
    unlimited = ClientLimits(rate_per_s=0, burst=1, max_uploads=0)
    unlimited.charge("a", 0.0, 1_000_000)
    assert unlimited.admit("a", 0.0, upload=False) is None
