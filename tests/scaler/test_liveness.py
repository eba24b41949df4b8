"""Which live instances count as silent: heartbeats that stopped changing, on our clock."""

from __future__ import annotations

from iras.scaler.fleet import Instance
from iras.scaler.liveness import HeartbeatWatch


def instance(heartbeat: str | None, instance_id: str = "i-1") -> Instance:
    return Instance(instance_id, "app-tier-instance-1", "running", heartbeat=heartbeat)


def test_a_heartbeat_that_keeps_changing_is_never_silent() -> None:
    watch = HeartbeatWatch(silent_s=5.0)
    for second in range(20):
        assert watch.silent([instance(f"{second}")], float(second)) == []


def test_a_heartbeat_that_stops_is_silent_after_silent_s() -> None:
    watch = HeartbeatWatch(silent_s=5.0)
    assert watch.silent([instance("1")], 0.0) == []
    assert watch.silent([instance("2")], 1.0) == []  # changed at 1 s
    assert watch.silent([instance("2")], 5.9) == []
    assert watch.silent([instance("2")], 6.0) == [instance("2")]
    assert watch.quiet_for_s("i-1", 6.0) == 5.0


def test_an_instance_that_never_beats_is_silent_silent_s_after_first_seen() -> None:
    watch = HeartbeatWatch(silent_s=5.0)
    assert watch.silent([instance(None)], 100.0) == []
    assert watch.silent([instance(None)], 105.0) == [instance(None)]


def test_a_new_watcher_judges_nothing_before_a_whole_silent_s() -> None:
    """The tag's value is the worker's clock: never compared, so a gateway that just took
    over sees an old value as new."""
    assert HeartbeatWatch(silent_s=5.0).silent([instance("1@1700000000")], 0.0) == []


def test_instances_no_longer_live_are_forgotten_and_judged_afresh() -> None:
    watch = HeartbeatWatch(silent_s=5.0)
    watch.silent([instance("1")], 0.0)
    watch.silent([], 10.0)  # stopped (warm pool) or gone
    assert watch.quiet_for_s("i-1", 10.0) is None
    assert watch.silent([instance("1")], 11.0) == []  # started again, its old tag kept


def test_silent_s_zero_turns_the_watch_off() -> None:
    watch = HeartbeatWatch(silent_s=0.0)
    watch.silent([instance(None)], 0.0)
    assert watch.silent([instance(None)], 1e6) == []
