"""Which fleet backend the settings ask for: `IRAS_FLEET=instances` or `asg`.

A module of its own so that the gateway, which only needs *a* `Fleet`, does not import
either backend by name.
"""

from __future__ import annotations

from iras.aws import AwsClients
from iras.config import Settings
from iras.scaler.asg_fleet import AsgFleet
from iras.scaler.fleet import Ec2Fleet, Fleet


def make_fleet(aws: AwsClients, settings: Settings) -> Fleet:
    """`Ec2Fleet` (the scaler launches and terminates instances itself) or `AsgFleet`
    (it sets the desired capacity of the workers' Auto Scaling group)."""
    if settings.fleet == "asg":
        return AsgFleet(aws.ec2, aws.autoscaling, settings)
    return Ec2Fleet(aws.ec2, settings)
