"""`iras serve` with an Auto Scaling group as its fleet: 0 -> N -> 0, busy workers kept.

The embedded AWS's Auto Scaling launches and terminates the instances on
SetDesiredCapacity, and the local runner boots each one's worker, as on AWS.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from iras.aws import open_clients
from iras.bench.serve_process import free_port
from iras.config import Settings
from iras.messages import name_stem
from iras.model import Classifier, Prediction
from iras.scaler.asg_fleet import AsgFleet
from tests.support import image_bytes, wait_until
from tests.web.conftest import iras_serve

pytestmark = pytest.mark.slow

CAP = 2
GROUP = "iras-app-tier"


async def test_a_group_grows_keeps_its_busy_workers_and_shrinks_to_zero(
    tmp_path: Path, classifier: Classifier
) -> None:
    aws_port = free_port()
    env = {"IRAS_FLEET": "asg", "IRAS_MAX_WORKERS": str(CAP), "IRAS_RATE_LIMIT_PER_S": "0"}
    async with iras_serve(tmp_path / "serve.log", "--aws-port", str(aws_port), env=env) as (
        _,
        http,
        _,
    ):
        settings = Settings(endpoint_url=f"http://127.0.0.1:{aws_port}", fleet="asg")
        async with open_clients(settings) as aws:
            fleet = AsgFleet(aws.ec2, aws.autoscaling, settings)
            assert await fleet.instances() == []  # at rest: none
            blobs = {f"asg_{i:02d}.png": image_bytes(seed=500 + i, fmt="PNG") for i in range(80)}
            uploads = asyncio.gather(
                *(http.post("/upload", files={"myfile": (n, b)}) for n, b in blobs.items())
            )

            async def protected_instances() -> list[str]:
                group = await aws.autoscaling.describe_auto_scaling_groups(
                    AutoScalingGroupNames=[GROUP]
                )
                members = group["AutoScalingGroups"][0]["Instances"]
                return [m["InstanceId"] for m in members if m["ProtectedFromScaleIn"]]

            async def one_protected() -> bool:
                return bool(await protected_instances())

            await wait_until(one_protected, timeout_s=60, period_s=0.05)
            busy = await protected_instances()
            # A scale-in to zero now (an operator, or a scheduled action) spares them.
            await aws.autoscaling.set_desired_capacity(
                AutoScalingGroupName=GROUP, DesiredCapacity=0, HonorCooldown=False
            )
            alive = {i.id for i in await fleet.instances() if i.state == "running"}
            assert set(busy) <= alive

            responses = await uploads
            outcomes = classifier.classify(list(blobs.values()))
            expected = sorted(
                f"{name_stem(n)}:{o.label}"
                for n, o in zip(blobs, outcomes, strict=True)
                if isinstance(o, Prediction)
            )
            assert [r.status_code for r in responses] == [200] * 80
            assert sorted(r.text for r in responses) == expected

            async def back_to_zero() -> bool:
                group = await aws.autoscaling.describe_auto_scaling_groups(
                    AutoScalingGroupNames=[GROUP]
                )
                return (
                    not [i for i in await fleet.instances() if i.state in ("pending", "running")]
                    and group["AutoScalingGroups"][0]["DesiredCapacity"] == 0
                )

            await wait_until(back_to_zero, timeout_s=40)
        state = (await http.get("/v1/scaler")).json()
        assert state["fleet"] == "asg" and state["leader"]
        sizes = [p["workers"] + p["starting"] for p in state["timeline"]]
        assert sizes[0] == 0 and 1 < max(sizes) <= CAP and sizes[-1] == 0
        # Waiting for protection to lift is one scale event, not one per look.
        ins = [d for d in state["decisions"] if d["to"] < d["from"]]
        assert 1 <= len(ins) <= 3, ins
