"""What instances cost: EC2's per-second billing with a minimum, as plain arithmetic.

EC2 bills Linux instances per second from launch (boot included) with a 60 s minimum, so
an instance stopped after 20 s costs 60 s, and one kept 20 s longer after its minimum
costs exactly 20 s more. The policy, the simulator and `/v1/scaler`'s cost figures all
count with these functions, so they agree on what a schedule costs.
"""

from __future__ import annotations

#: EC2's minimum billed time per launch, in seconds (Linux, per-second billing).
EC2_BILLING_MINIMUM_S = 60.0

#: On-demand Linux prices, USD per hour, us-east-1 (for cost estimates; configure
#: `IRAS_PRICE_PER_HOUR` for another region or type).
ON_DEMAND_PRICE_PER_HOUR = {
    "t3.micro": 0.0104,
    "t3.small": 0.0208,
    "t3.medium": 0.0416,
    "t3.large": 0.0832,
    "c6i.large": 0.085,
    "c6i.xlarge": 0.17,
    "c7i.large": 0.08925,
    "g4dn.xlarge": 0.526,
}


def billed_s(running_s: float, minimum_s: float = EC2_BILLING_MINIMUM_S) -> float:
    """Seconds billed for an instance that ran `running_s` since launch."""
    return max(running_s, minimum_s)


def cost(instance_s: float, price_per_hour: float) -> float:
    """Dollars for `instance_s` billed instance-seconds."""
    return instance_s * price_per_hour / 3600.0


def price_per_hour(instance_type: str, configured: float | None = None) -> float | None:
    """The configured price, else the on-demand price of `instance_type` (None: unknown)."""
    if configured is not None:
        return configured
    return ON_DEMAND_PRICE_PER_HOUR.get(instance_type)
