"""IRAS's policies in the simulator are `decide` itself, fed as the controller feeds it."""

from __future__ import annotations

import pytest

from iras.scaler.policy import Observation, PolicyState, decide
from iras.simulation import policies
from iras.simulation.engine import Simulation
from iras.simulation.looks import LookDriver
from iras.simulation.types import Fleet, View

FLEET = Fleet(boot_s=40.0, worker_rate_ips=15.0, max_workers=20)


def test_a_look_is_decide_on_the_observation_the_controller_builds() -> None:
    policy = policies.backlog(FLEET)
    view = View(
        now_s=7.0, waiting=25, in_flight=8, ready=1, booting=1, uploaded=4, ages_s=(50.0, 3.0)
    )
    look = policy.look(view)
    observation = Observation(
        now_s=7.0, visible=25, in_flight=8, arriving=0, workers=1, starting=1, uploaded=4,
        worker_rate_ips=15.0, boot_s=40.0, ages_s=(50.0, 3.0),
    )  # fmt: skip
    assert policy.last_observation == observation
    assert look.desired == decide(observation, policy.config, PolicyState()).desired == 4
    assert look.next_look_in_s == 1.0


def test_the_capacity_model_learns_from_simulated_batches_and_boots() -> None:
    policy = policies.iras(FLEET, latency_target_s=10.0)
    policy.batch_done("w0", 8, 0.4)  # 20 images/s measured
    policy.booted(55.0)
    policy.look(View(1.0, 0, 0, 1, 0, 0, (60.0,)))
    assert policy.last_observation is not None
    assert (policy.last_observation.worker_rate_ips, policy.last_observation.boot_s) == (20.0, 55.0)
    assert policy.config.latency_target_s == 10.0


def test_a_cooldown_asks_to_look_again_sooner() -> None:
    policy = policies.backlog(FLEET)  # 0.5 s cooldown
    look = policy.look(View(3.0, 0, 0, 1, 0, 0, (10.0,)))  # the first idle look
    assert (look.desired, look.next_look_in_s) == (1, 0.5)


def test_a_nudge_is_asked_of_decide_with_the_upload_arriving() -> None:
    policy = policies.backlog(FLEET)
    empty = View(0.0, 0, 0, 0, 0, 0, ())
    assert policy.nudge(empty, 0.3)  # 1 arriving on no fleet -> 1 worker: scale out
    one = View(0.0, 0, 0, 1, 0, 0, (70.0,))
    assert not policy.nudge(one, 0.3)  # one worker is enough for it


def test_a_nudge_launches_at_the_upload_not_at_the_next_look() -> None:
    run = Simulation([0.3], FLEET, LookDriver(policies.backlog(FLEET))).run()
    # launched at 0.3 (not at the look at 1.0): ready at 40.3, done 1/15 later
    assert run.workers[0].launched_s == pytest.approx(0.3)
    assert run.latencies_s == [pytest.approx(40 + 1 / 15)]


def test_the_backlog_policy_is_todays_rule_and_iras_the_gateways_defaults() -> None:
    backlog = policies.backlog(FLEET).config
    assert (backlog.latency_target_s, backlog.backlog_per_worker, backlog.scale_in_cooldown_s) == (
        None,
        10,
        0.5,
    )
    iras = policies.iras(FLEET, 7.5).config
    assert (iras.latency_target_s, iras.min_workers, iras.max_workers) == (7.5, 0, 20)
    assert iras.billing_minimum_s == FLEET.billing_minimum_s == 60.0
