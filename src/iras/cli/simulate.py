"""`iras simulate`: replay an arrival trace through the scaling policies and compare them.

The trace is a file of arrival times (`--trace`) or a named, seeded shape
(`--generate`). Each policy asked for (`--policy`, all by default) runs it on a
simulated queue and fleet (`iras.simulation`): IRAS's own `decide`, with the latency
objective (`iras`) and with today's backlog rule (`backlog`), KEDA's SQS scaler and AWS
target tracking with their defaults, and an oracle that knows every arrival. It prints
one row per policy (latency p50/p95/max, instance-seconds, cost, peak workers, scale
events), or one JSON object (`--json`), and with `--plot` draws the fleet and the
latencies. It runs on the base install; only `--plot` needs matplotlib (`iras[bench]`).
Exit codes: 0 done, 2 the run could not be made (a bad trace or argument, no matplotlib
for --plot).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iras import extras
from iras.simulation import POLICY_NAMES
from iras.simulation.traces import GENERATORS, TraceError

if TYPE_CHECKING:
    from iras.simulation.runs import Scenario


class SimulateError(Exception):
    """The run cannot be made; the message says why (exit code 2)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="replay an arrival trace through the scaling policy and reference policies",
        description=(
            "Simulate a trace of uploads on a queue and a fleet that boots, batches and bills "
            "per second with a 60 s minimum, under IRAS's scaling policy and reference "
            "policies (KEDA, AWS target tracking, an oracle), and compare latency and cost."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--trace",
        type=Path,
        metavar="FILE",
        help="arrival times in seconds, one per line, ascending (# comments allowed)",
    )
    source.add_argument(
        "--generate", choices=tuple(GENERATORS), help="a generated trace of this shape"
    )
    parser.add_argument("--seed", type=int, default=1, help="for --generate (default: 1)")
    parser.add_argument(
        "--boot-s", type=_at_least_0, default=40.0, help="launch -> taking work (default: 40)"
    )
    parser.add_argument(
        "--worker-rate",
        type=_above_0,
        default=15.0,
        metavar="IMAGES_PER_S",
        help="images one worker classifies per second of busy time (default: 15)",
    )
    parser.add_argument(
        "--latency-target-s",
        type=_above_0,
        default=10.0,
        help="the p95 target of upload -> answer (default: 10)",
    )
    parser.add_argument(
        "--max-workers", type=_at_least_1, default=20, help="fleet bound (default: 20)"
    )
    parser.add_argument(
        "--batch-size", type=_at_least_1, default=8, help="images per batch (default: 8)"
    )
    parser.add_argument(
        "--price-per-hour",
        type=_at_least_0,
        help="USD per instance-hour (default: the on-demand price of t3.medium)",
    )
    parser.add_argument(
        "--policy",
        type=_policies,
        default=POLICY_NAMES,
        metavar="NAME[,NAME...]",
        help=f"all, or some of {', '.join(POLICY_NAMES)} (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="draw the fleet and latencies"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        arrivals, trace = _arrivals(args)
        if args.plot:
            problem = extras.check("--plot", "bench")
            if problem is not None:
                raise SimulateError(problem)
        report = _simulate(args, arrivals, trace)
    except (TraceError, SimulateError) as error:
        print(f"iras simulate: {error}", file=sys.stderr)
        return 2
    print(report)
    return 0


def _arrivals(args: argparse.Namespace) -> tuple[list[float], dict[str, Any]]:
    from iras.simulation import traces

    if args.trace is not None:
        arrivals = traces.load(args.trace)
        trace: dict[str, Any] = {"file": str(args.trace)}
    else:
        arrivals = traces.generate(args.generate, args.seed)
        trace = {"generator": args.generate, "seed": args.seed}
    trace.update(images=len(arrivals), first_s=arrivals[0], last_s=arrivals[-1])
    return arrivals, trace


def _simulate(args: argparse.Namespace, arrivals: list[float], trace: dict[str, Any]) -> str:
    from iras.simulation import report
    from iras.simulation.runs import DEFAULT_PRICE_PER_HOUR, Scenario, run_all
    from iras.simulation.types import Fleet

    fleet = Fleet(args.boot_s, args.worker_rate, args.max_workers, args.batch_size)
    price = DEFAULT_PRICE_PER_HOUR if args.price_per_hour is None else args.price_per_hour
    scenario = Scenario(fleet, args.latency_target_s, price)
    runs = run_all(arrivals, scenario, args.policy)
    table = [report.figures(n, r, scenario.latency_target_s, price) for n, r in runs.items()]
    title = _title(trace, scenario)
    if args.plot:
        from iras.simulation.plot import draw

        draw(args.plot, runs, title, scenario.latency_target_s)
        print(f"iras simulate: chart written to {args.plot}", file=sys.stderr)
    if args.json:
        parameters = {
            "boot_s": fleet.boot_s,
            "worker_rate_ips": fleet.worker_rate_ips,
            "latency_target_s": scenario.latency_target_s,
            "max_workers": fleet.max_workers,
            "batch_size": fleet.batch_size,
            "billing_minimum_s": fleet.billing_minimum_s,
            "price_per_hour": price,
        }
        return json.dumps(report.to_json(trace, parameters, table), indent=2)
    notes = [
        "busy-s: images / rate, the work itself; instance-s: billed, 60 s minimum per launch.",
        "oracle: knows every arrival; every image within the target where it can be "
        "(stricter than a p95).",
    ]
    return report.render(title, table, notes)


def _title(trace: dict[str, Any], scenario: Scenario) -> str:
    source = trace.get("file") or f"{trace['generator']} (seed {trace['seed']})"
    fleet = scenario.fleet
    return (
        f"iras simulate: {source}, {trace['images']} images over "
        f"{trace['last_s'] - trace['first_s']:.0f} s; boot {fleet.boot_s:g} s, "
        f"{fleet.worker_rate_ips:g} images/s per worker, batch {fleet.batch_size}, "
        f"target {scenario.latency_target_s:g} s, at most {fleet.max_workers} workers, "
        f"${scenario.price_per_hour:g}/h"
    )


def _policies(text: str) -> tuple[str, ...]:
    if text == "all":
        return POLICY_NAMES
    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in POLICY_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"no policy {', '.join(map(repr, unknown))}; choose all or among {', '.join(POLICY_NAMES)}"
        )
    return tuple(dict.fromkeys(names))  # each once, in the order given


def _above_0(text: str) -> float:
    return _number(text, lambda value: value > 0, "> 0")


def _at_least_0(text: str) -> float:
    return _number(text, lambda value: value >= 0, ">= 0")


def _number(text: str, ok: Callable[[float], bool], bound: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {text}")
    return value


def _at_least_1(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
