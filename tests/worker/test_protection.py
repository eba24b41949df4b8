"""When a worker of an Auto Scaling group protects its instance from scale-in: the pure
schedule (the calls themselves are tested against the embedded AWS in
tests/scaler/test_asg_fleet.py)."""

from __future__ import annotations

from iras.worker.protection import ScheduleOfProtection


def test_a_new_worker_first_clears_whatever_protection_it_finds() -> None:
    schedule = ScheduleOfProtection()
    assert schedule.due(holding=False, now_s=0.0) is False
    schedule.done(False)
    assert schedule.due(holding=False, now_s=1.0) is None  # nothing to change: no call


def test_work_protects_at_once_and_idleness_releases_after_the_delay() -> None:
    schedule = ScheduleOfProtection(release_after_s=5.0, protected=False)
    schedule.busy(10.0)
    assert schedule.due(holding=False, now_s=10.0) is True  # received, not yet held
    schedule.done(True)
    assert schedule.due(holding=True, now_s=20.0) is None  # busy for a while: no calls
    assert schedule.due(holding=False, now_s=24.9) is None  # idle, within the delay
    assert schedule.due(holding=False, now_s=25.0) is False
    schedule.done(False)
    assert schedule.due(holding=False, now_s=60.0) is None


def test_gaps_between_batches_do_not_flip_the_protection() -> None:
    schedule = ScheduleOfProtection(release_after_s=5.0, protected=True, busy_at_s=0.0)
    calls = [
        schedule.due(holding=t % 2 == 0, now_s=float(t))  # held, not held, held...
        for t in range(30)
    ]
    assert calls == [None] * 30


def test_a_failed_call_is_retried_after_the_retry_delay_only() -> None:
    schedule = ScheduleOfProtection(retry_s=2.0, protected=False)
    assert schedule.due(holding=True, now_s=0.0) is True
    schedule.failed(0.0)
    assert schedule.due(holding=True, now_s=1.9) is None
    assert schedule.due(holding=True, now_s=2.0) is True
    schedule.done(True)
    assert schedule.failed_at_s is None
