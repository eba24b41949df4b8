"""The billing meter: instance-seconds with the minimum, cost, cost per 1,000 images."""

from __future__ import annotations

import pytest

from iras.scaler.meter import LISTING_LAG_S, BillingMeter, billed_share_s


@pytest.mark.parametrize(
    ("age_at_start_s", "running_s", "minimum_s", "billed"),
    [
        (0.0, 20.0, 60.0, 60.0),  # launched here, 20 s: the 60 s minimum
        (0.0, 90.0, 60.0, 90.0),  # past the minimum: what it ran
        (0.0, 20.0, 0.0, 20.0),  # no minimum (locally)
        (10.0, 5.0, 60.0, 50.0),  # found at age 10: max(15, 60) - 10, what was still owed
        (100.0, 5.0, 60.0, 5.0),  # found past its minimum: only its seconds since
        (None, 5.0, 60.0, 5.0),  # age unknown: its seconds since, no minimum
        (0.0, -1.0, 60.0, 60.0),  # a clock oddity counts as no time, the minimum stands
    ],
)
def test_billed_share(
    age_at_start_s: float | None, running_s: float, minimum_s: float, billed: float
) -> None:
    assert billed_share_s(age_at_start_s, running_s, minimum_s) == pytest.approx(billed)


def test_runs_launched_found_and_gone_add_up() -> None:
    meter = BillingMeter(minimum_s=60.0, price_per_hour=3.6)  # $0.001 per second
    meter.launched("i-a", now_s=0.0)
    assert meter.instance_s(0.0) == 60.0  # the minimum is owed from the launch
    meter.seen({"i-a": 0.0, "i-b": 30.0}, now_s=10.0)  # i-b found at age 30
    assert meter.age_s("i-b", 10.0) == 30.0 and meter.age_s("i-a", 10.0) == 10.0
    # At 100: i-a ran 100 s; i-b 90 s since found at 30 (age 120 > 60): 100 + 90.
    assert meter.instance_s(100.0) == pytest.approx(190.0)
    meter.seen({"i-b": None}, now_s=100.0)  # i-a seen gone: its run ends at 100
    assert meter.instance_s(200.0) == pytest.approx(100.0 + 190.0)
    meter.seen({}, now_s=200.0)  # i-b gone too: nothing grows any more
    assert meter.instance_s(1000.0) == pytest.approx(290.0)
    assert meter.cost(1000.0) == pytest.approx(0.29)
    assert meter.cost_per_1000(1000.0) is None  # no image answered
    meter.answered(580)
    assert meter.cost_per_1000(1000.0) == pytest.approx(0.5)  # $0.29 per 580 images


def test_a_warm_start_is_billed_anew_with_its_own_minimum() -> None:
    meter = BillingMeter(minimum_s=60.0, price_per_hour=None)
    meter.launched("i-a", now_s=0.0)
    meter.seen({"i-a": 0.0}, now_s=1.0)
    meter.seen({}, now_s=10.0)  # stopped after 10 s: 60 billed
    meter.launched("i-a", now_s=50.0)  # started again
    assert meter.instance_s(55.0) == pytest.approx(120.0)
    assert meter.cost(55.0) is None and meter.cost_per_1000(55.0) is None  # no price


def test_a_launch_the_listing_does_not_show_yet_is_kept_for_a_while() -> None:
    """EC2's listing may lag a launch: the run is not ended by the next look."""
    meter = BillingMeter(minimum_s=0.0, price_per_hour=None)
    meter.launched("i-a", now_s=0.0)
    meter.seen({}, now_s=1.0)
    assert meter.age_s("i-a", 5.0) == 5.0  # still metered
    meter.seen({}, now_s=LISTING_LAG_S + 1)
    assert meter.age_s("i-a", LISTING_LAG_S + 2) is None  # never listed: gone
    assert meter.instance_s(100.0) == pytest.approx(LISTING_LAG_S + 1)
