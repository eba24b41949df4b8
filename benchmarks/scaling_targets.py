"""The latency objective's targets, on simulated traces (no AWS, no model, no gateway).

    .venv/bin/python benchmarks/scaling_targets.py [--json]

Every generator of `iras simulate` with seeds 1, 2 and 3, on the same fleet (boot 40 s,
15 images/s per worker, target 10 s, at most 20 workers), under every policy, through
`iras.simulation` directly. One row per trace and seed: each policy's p95 and
instance-seconds, and iras / oracle for both. Then the issue's targets, each met or NOT
MET, with the rows that miss:

(a) where an online policy can meet the target, iras's p95 <= 10 s: on `diurnal` (the
    rate changes by ~2 images/s over a boot, so a fleet launched ahead of the trend
    keeps up) and `trickle` (one warm worker is plenty; only the first image waits for
    a boot). Where none can (`burst`, `spikes`, `course`: load arriving faster than any
    fleet boots, from an idle fleet), iras's p95 <= keda's and <= target tracking's;
(b) iras's instance-seconds <= 1.25 x the oracle's on every trace, <= 1.1 x on the
    median of the ratios;
(c) iras beats keda and target tracking on every trace: fewer instance-seconds at an
    equal or better p95, or a better p95 at equal or fewer instance-seconds.

It reports and exits 0, met or not.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass

from iras.simulation import POLICY_NAMES
from iras.simulation.report import Figures, figures
from iras.simulation.runs import Scenario, run_all
from iras.simulation.traces import GENERATORS, generate
from iras.simulation.types import Fleet

SEEDS = (1, 2, 3)
SCENARIO = Scenario(Fleet(boot_s=40.0, worker_rate_ips=15.0, max_workers=20), latency_target_s=10.0)
#: Traces where an online policy can meet the target (a), and bursts where none can.
FEASIBLE = ("diurnal", "trickle")
BURSTS = ("burst", "spikes", "course")
REFERENCES = ("keda", "target-tracking")
EPSILON = 1e-9  # "equal" p95s and instance-seconds, within float rounding


@dataclass(frozen=True, slots=True)
class Row:
    trace: str
    seed: int
    images: int
    by_policy: dict[str, Figures]

    @property
    def iras(self) -> Figures:
        return self.by_policy["iras"]

    def ratio(self, field: str) -> float:
        oracle = getattr(self.by_policy["oracle"], field)
        return getattr(self.iras, field) / oracle if oracle else float("inf")


def measure() -> list[Row]:
    rows = []
    for trace in GENERATORS:
        for seed in SEEDS:
            arrivals = generate(trace, seed)
            runs = run_all(arrivals, SCENARIO, POLICY_NAMES)
            by_policy = {
                name: figures(name, run, SCENARIO.latency_target_s, SCENARIO.price_per_hour)
                for name, run in runs.items()
            }
            rows.append(Row(trace, seed, len(arrivals), by_policy))
    return rows


def table(rows: list[Row]) -> str:
    head = ["trace", "seed", "images", *(f"{n} p95 s / inst-s" for n in POLICY_NAMES)]
    head += ["iras/oracle inst-s", "iras/oracle p95"]
    lines = [head]
    for row in rows:
        cells = [row.trace, str(row.seed), str(row.images)]
        for name in POLICY_NAMES:
            f = row.by_policy[name]
            cells.append(f"{f.p95_s:.1f} / {f.instance_seconds:.0f}")
        cells += [f"{row.ratio('instance_seconds'):.2f}", f"{row.ratio('p95_s'):.2f}"]
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def beats(mine: Figures, theirs: Figures) -> bool:
    cheaper = mine.instance_seconds < theirs.instance_seconds - EPSILON
    no_dearer = mine.instance_seconds <= theirs.instance_seconds + EPSILON
    faster = mine.p95_s < theirs.p95_s - EPSILON
    no_slower = mine.p95_s <= theirs.p95_s + EPSILON
    return (cheaper and no_slower) or (faster and no_dearer)


def targets(rows: list[Row]) -> dict[str, tuple[bool, list[str]]]:
    """Each target: (met, the rows that miss it, in words)."""
    feasible = [
        f"{r.trace} {r.seed}: p95 {r.iras.p95_s:.1f} s > {SCENARIO.latency_target_s:g} s"
        for r in rows
        if r.trace in FEASIBLE and r.iras.p95_s > SCENARIO.latency_target_s + EPSILON
    ]
    bursts = [
        f"{r.trace} {r.seed}: p95 {r.iras.p95_s:.1f} s > {name} {r.by_policy[name].p95_s:.1f} s"
        for r in rows
        if r.trace in BURSTS
        for name in REFERENCES
        if r.iras.p95_s > r.by_policy[name].p95_s + EPSILON
    ]
    ratios = [r.ratio("instance_seconds") for r in rows]
    every = [
        f"{r.trace} {r.seed}: {r.ratio('instance_seconds'):.2f} x the oracle"
        for r in rows
        if r.ratio("instance_seconds") > 1.25 + EPSILON
    ]
    median = statistics.median(ratios)
    beaten = [
        f"{r.trace} {r.seed}: iras {r.iras.p95_s:.1f} s / {r.iras.instance_seconds:.0f} s vs "
        f"{name} {r.by_policy[name].p95_s:.1f} s / {r.by_policy[name].instance_seconds:.0f} s"
        for r in rows
        for name in REFERENCES
        if not beats(r.iras, r.by_policy[name])
    ]
    return {
        f"(a) iras p95 <= {SCENARIO.latency_target_s:g} s on {', '.join(FEASIBLE)}": (
            not feasible,
            feasible,
        ),
        f"(a) iras p95 <= keda's and target-tracking's on {', '.join(BURSTS)}": (
            not bursts,
            bursts,
        ),
        "(b) iras instance-s <= 1.25 x oracle's on every trace": (not every, every),
        f"(b) iras instance-s <= 1.1 x oracle's on the median (median {median:.2f})": (
            median <= 1.1 + EPSILON,
            [],
        ),
        "(c) iras beats keda and target-tracking on every trace": (not beaten, beaten),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = measure()
    elapsed_s = time.perf_counter() - started
    checks = targets(rows)
    if args.json:
        print(
            json.dumps(
                {
                    "rows": [
                        {
                            "trace": r.trace,
                            "seed": r.seed,
                            "policies": {n: asdict(f) for n, f in r.by_policy.items()},
                        }
                        for r in rows
                    ],
                    "targets": {
                        name: {"met": met, "misses": misses}
                        for name, (met, misses) in checks.items()
                    },
                },
                indent=2,
            )
        )
        return
    print(table(rows))
    print(f"\n{len(rows)} traces x {len(POLICY_NAMES)} policies simulated in {elapsed_s:.1f} s\n")
    for name, (met, misses) in checks.items():
        print(f"{'met    ' if met else 'NOT MET'}  {name}")
        for miss in misses:
            print(f"           {miss}")


if __name__ == "__main__":
    main()
