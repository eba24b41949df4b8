"""One scenario, run under each policy by name: what `iras simulate` and the benchmark call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from iras.config.settings import Settings
from iras.scaler import billing
from iras.simulation import POLICY_NAMES, oracle, policies
from iras.simulation.engine import Simulation
from iras.simulation.keda import Keda
from iras.simulation.looks import LookDriver, Policy
from iras.simulation.target_tracking import TargetTracking
from iras.simulation.types import Fleet, Run

#: The workers' instance type by default, and its on-demand price per hour.
DEFAULT_INSTANCE_TYPE: str = Settings.model_fields["worker_instance_type"].default
_PRICE = billing.price_per_hour(DEFAULT_INSTANCE_TYPE)
assert _PRICE is not None, f"billing knows no price for {DEFAULT_INSTANCE_TYPE}"
DEFAULT_PRICE_PER_HOUR: float = _PRICE
DEFAULT_BATCH_SIZE: int = Settings.model_fields["batch_size"].default


@dataclass(frozen=True, slots=True)
class Scenario:
    """The fleet, the latency target and the price: everything but the trace."""

    fleet: Fleet
    latency_target_s: float
    price_per_hour: float = DEFAULT_PRICE_PER_HOUR

    def __post_init__(self) -> None:
        if not self.latency_target_s > 0:
            raise ValueError(f"the latency target must be > 0 s, got {self.latency_target_s}")
        if not self.price_per_hour >= 0:
            raise ValueError(f"the price per hour must be >= 0, got {self.price_per_hour}")


def look_policy(name: str, scenario: Scenario) -> Policy:
    """The look-based policy called `name`."""
    fleet = scenario.fleet
    if name == "iras":
        return policies.iras(fleet, scenario.latency_target_s)
    if name == "backlog":
        return policies.backlog(fleet)
    if name == "keda":
        return Keda(fleet.max_workers)
    if name == "target-tracking":
        target = scenario.latency_target_s * fleet.worker_rate_ips
        return TargetTracking(target, fleet.max_workers)
    raise ValueError(f"no policy {name!r}; choose among {', '.join(POLICY_NAMES)}")


def run_policy(name: str, arrivals: Sequence[float], scenario: Scenario) -> Run:
    """The run of `arrivals` under the policy called `name`."""
    if name == "oracle":
        return oracle.oracle(arrivals, scenario.fleet, scenario.latency_target_s)
    driver = LookDriver(look_policy(name, scenario))
    return Simulation(arrivals, scenario.fleet, driver).run()


def run_all(
    arrivals: Sequence[float], scenario: Scenario, names: Sequence[str] = POLICY_NAMES
) -> dict[str, Run]:
    """The runs under each of `names`, by name, in that order."""
    return {name: run_policy(name, arrivals, scenario) for name in names}
