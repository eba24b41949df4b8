"""What results tell the controller: a worker's rate, an instance's boot; junk teaches nothing."""

from __future__ import annotations

from typing import Any

import pytest

from iras.scaler.capacity import CapacityModel
from iras.scaler.decision_log import DecisionLog, ScaleEvent, plain_figures
from iras.scaler.fleet import Instance
from iras.scaler.reports import Report, WorkerReports, read_report

WORKER = Instance("i-0a", "app-tier-instance-1", "running")


def result(worker: Any = "app-tier-instance-1", **timings: Any) -> dict[str, Any]:
    return {"request_id": "r1", "worker": worker, "timings": timings}


@pytest.mark.parametrize(
    ("given", "report"),
    [
        (result(worker_rate_ips=12.5, worker_up_s=3.0), Report("app-tier-instance-1", 12.5, 3.0)),
        (result(inference_ms=80.0), Report("app-tier-instance-1", None, None)),  # an old worker
        (result(worker_rate_ips="fast", worker_up_s=True), Report("app-tier-instance-1", None, None)),
        (result(worker_rate_ips=-1, worker_up_s=-0.5), Report("app-tier-instance-1", None, None)),
        (result(worker_rate_ips=float("nan"), worker_up_s=float("inf")),
         Report("app-tier-instance-1", None, None)),
        ({"worker": "w", "timings": "none"}, Report("w", None, None)),
        ({"worker": "w"}, Report("w", None, None)),
        (result(worker=None, worker_rate_ips=1.0), None),
        (result(worker="", worker_rate_ips=1.0), None),
        ({}, None),
        (["not", "a", "dict"], None),
        (None, None),
    ],
)  # fmt: skip
def test_reading_a_result_never_fails(given: object, report: Report | None) -> None:
    assert read_report(given) == report


def test_junk_results_teach_nothing_and_raise_nothing() -> None:
    model = CapacityModel(rate_guess_ips=20.0, boot_guess_s=40.0)
    reports = WorkerReports(model)
    reports.launched(WORKER, now_s=100.0)
    junk: list[object] = [None, {}, [], result(worker=7), result("someone-else", worker_up_s=1.0)]
    for given in junk:
        reports.result(given, now_s=110.0)
    assert model.rate.measured is None and model.boot.measured is None
    assert reports.booting(WORKER.id)
    reports.result(result(worker_rate_ips=-3.0, worker_up_s=-1.0), now_s=110.0)
    assert model.rate.measured is None and model.boot.measured is None
    assert not reports.booting(WORKER.id)  # it answered, so it is up, but says not since when


def test_the_first_result_of_a_launch_times_its_boot_by_name_or_by_id() -> None:
    model = CapacityModel(rate_guess_ips=20.0, boot_guess_s=40.0)
    reports = WorkerReports(model)
    other = Instance("i-0b", "app-tier-instance-2", "running")
    reports.launched(WORKER, now_s=100.0)
    reports.launched(other, now_s=100.0)
    reports.fleet([WORKER, other], now_s=101.0)
    # Ready at 112 - 4 = 108, launched at 100: an 8 s boot.
    reports.result(result("app-tier-instance-1", worker_rate_ips=30.0, worker_up_s=4.0), 112.0)
    assert model.boot.measured == pytest.approx(8.0) and model.rate.measured == 30.0
    assert not reports.booting(WORKER.id) and reports.booting(other.id)
    # A later result of the same launch adds no boot sample.
    reports.result(result("app-tier-instance-1", worker_up_s=10.0), 118.0)
    assert model.boot.samples == 1
    # On AWS results name the instance id: ready at 130 - 10 = 120, a 20 s boot.
    reports.result(result("i-0b", worker_rate_ips=10.0, worker_up_s=10.0), 130.0)
    assert model.boot.samples == 2 and model.boot.measured == pytest.approx(14.0)  # median
    assert model.rate.measured == pytest.approx(20.0)  # median of 30 and 10


def test_a_late_result_of_a_released_namesake_is_not_a_boot() -> None:
    """Names are used again: the old worker-1's last result, ready long before this
    launch, must not count as the new one's boot."""
    model = CapacityModel(rate_guess_ips=20.0, boot_guess_s=40.0)
    reports = WorkerReports(model)
    reports.launched(WORKER, now_s=100.0)
    reports.result(result("app-tier-instance-1", worker_up_s=60.0), 101.0)  # ready at 41
    assert model.boot.samples == 0 and reports.booting(WORKER.id)
    reports.result(result("app-tier-instance-1", worker_up_s=1.0), 104.0)  # ready at 103
    assert model.boot.measured == pytest.approx(3.0)


def test_an_instance_gone_before_answering_is_forgotten() -> None:
    reports = WorkerReports(CapacityModel(rate_guess_ips=20.0, boot_guess_s=40.0))
    reports.launched(WORKER, now_s=0.0)
    reports.fleet([], now_s=1.0)  # not listed yet: kept, EC2's listing may lag
    assert reports.booting(WORKER.id)
    reports.fleet([], now_s=60.0)
    assert not reports.booting(WORKER.id)


def test_the_decision_log_keeps_the_last_events_as_json_can_carry_them() -> None:
    log = DecisionLog(kept=2)
    for n in range(3):
        log.add(ScaleEvent(float(n), n, n + 1, f"step {n}", {"work": float(n)}))
    assert [event["reason"] for event in log.as_dicts()] == ["step 1", "step 2"]
    assert log.as_dicts()[-1] == {
        "t": 2.0,
        "from": 2,
        "to": 3,
        "reason": "step 2",
        "figures": {"work": 2.0},
    }
    assert plain_figures({"needed": float("inf"), "rate": 3}) == {"needed": None, "rate": 3.0}
    assert ScaleEvent(0.0, 3, 1, "", {}).direction == "in"
