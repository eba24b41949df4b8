"""KEDA + HPA and AWS target tracking with their defaults, look by look.

KEDA: queueLength 5, activation 0, polling 30 s, cooldown 300 s; the HPA syncs every
15 s, scales up by at most max(2 x, +4), down to the highest recommendation of 300 s.
Target tracking: target 150 (10 s x 15 images/s), 1-minute datapoints, 3 above to
scale out, 15 below 90 % (and no instance in its 300 s warm-up) to scale in.
"""

from __future__ import annotations

from iras.simulation.keda import Keda
from iras.simulation.target_tracking import TargetTracking
from iras.simulation.types import View


def view(
    now_s: float,
    waiting: int = 0,
    in_flight: int = 0,
    ready: int = 0,
    booting: int = 0,
    age_s: float = 1000.0,
) -> View:
    return View(now_s, waiting, in_flight, ready, booting, 0, (age_s,) * (ready + booting))


def test_keda_activates_from_zero_only_on_its_30_s_poll() -> None:
    keda = Keda(max_workers=20)
    assert keda.look(view(0.0)).desired == 0  # poll: nothing -> inactive
    assert keda.look(view(15.0, waiting=3)).desired == 0  # an HPA sync: at 0 it does nothing
    look = keda.look(view(30.0, waiting=3))  # poll: 3 > 0 -> active -> 1
    assert (look.desired, look.next_look_in_s) == (1, 15.0)


def test_keda_counts_in_flight_and_the_hpa_doubles_or_adds_four() -> None:
    keda = Keda(max_workers=20)
    assert keda.look(view(0.0, waiting=60, in_flight=40)).desired == 1
    # 100 messages -> ceil(100 / 5) = 20, limited to max(2 x 1, 1 + 4) = 5
    assert keda.look(view(15.0, waiting=60, in_flight=40, booting=1)).desired == 5
    # -> 20, limited to max(2 x 5, 5 + 4) = 10
    assert keda.look(view(30.0, waiting=60, in_flight=40, booting=5)).desired == 10
    # 50 messages on 10 pods: 50 / (5 x 10) = 1, within the 10 % tolerance -> 10
    assert keda.look(view(45.0, waiting=50, ready=10)).desired == 10
    # 21 messages on 4 pods: 21 / 20 = 1.05, within tolerance -> stays 4 (not ceil(21/5) = 5)
    assert Keda(20)._hpa(60.0, 21, 4) == 4


def test_keda_scales_down_only_after_300_s_of_lower_recommendations() -> None:
    keda = Keda(max_workers=20)
    keda.look(view(0.0, waiting=100))
    keda.look(view(15.0, waiting=100, booting=1))  # recommends 20 at 15
    keda.look(view(30.0, waiting=100, booting=5))  # and at 30
    desired = {}
    for t in range(45, 361, 15):  # 5 messages: recommends 1, but the window remembers 20
        desired[t] = keda.look(view(float(t), waiting=5, ready=10)).desired
    # the current 10 stays (the window's 20 is above it, and there is no scale-up)
    assert desired[45] == desired[315] == 10
    assert desired[330] == desired[360] == 1  # the 20 of 30 s is 300 s old: out of the window


def test_keda_goes_to_zero_300_s_after_the_last_active_poll() -> None:
    keda = Keda(max_workers=20)
    keda.look(view(0.0, waiting=1))  # active at 0 -> 1
    answers = {t: keda.look(view(float(t), ready=1)).desired for t in range(15, 301, 15)}
    assert answers[285] == 1  # the HPA never goes below 1
    assert answers[300] == 0  # the poll at 300: inactive for 300 s


def test_target_tracking_scales_out_after_three_breaching_minutes_in_proportion() -> None:
    tracking = TargetTracking(target_backlog=150.0, max_workers=20)
    # no instance: the datapoint is the backlog itself (max(1, 0) instances)
    assert tracking.look(view(0.0, waiting=1000)).desired == 0
    assert tracking.look(view(60.0, waiting=1000)).desired == 0
    look = tracking.look(view(120.0, waiting=1000))  # 3rd: ceil(1 x 1000 / 150) = 7
    assert (look.desired, look.next_look_in_s) == (7, 60.0)
    # 7 instances, 2100 waiting: 300 per instance, still breaching -> ceil(7 x 300 / 150)
    assert tracking.look(view(180.0, waiting=2100, booting=7)).desired == 14


def test_target_tracking_ignores_in_flight_and_a_backlog_under_target() -> None:
    tracking = TargetTracking(target_backlog=150.0, max_workers=20)
    for t in range(0, 600, 60):  # 149 waiting on 0 instances: never above 150
        assert tracking.look(view(float(t), waiting=149, in_flight=5000)).desired == 0


def test_target_tracking_scales_in_after_fifteen_low_minutes_unless_warming() -> None:
    tracking = TargetTracking(target_backlog=150.0, max_workers=20)
    answers = [tracking.look(view(60.0 * i, waiting=40, ready=4)).desired for i in range(15)]
    # 40 / 4 = 10 per instance < 135: the 15th low datapoint -> ceil(4 x 10 / 150) = 1
    assert answers[:14] == [4] * 14 and answers[14] == 1
    warming = TargetTracking(target_backlog=150.0, max_workers=20)
    young = [warming.look(view(60.0 * i, ready=4, age_s=100.0)).desired for i in range(16)]
    assert young == [4] * 16  # instances in warm-up block scale-in
    near = TargetTracking(target_backlog=150.0, max_workers=20)
    above_low = [near.look(view(60.0 * i, waiting=560, ready=4)).desired for i in range(16)]
    assert above_low == [4] * 16  # 140 per instance: under the target, not 10 % under
