"""Issue 19's overhead target: what tracing every upload costs `iras serve`, in rounds.

    .venv/bin/python benchmarks/tracing_overhead.py [--images DIR] [--rounds 3] [--count N] [--sample R] [--json]

Each round runs two fresh `iras serve` (0-2 workers, the embedded AWS), one with tracing
off (no `OTEL_*` variable: the default) and one with it on (`OTEL_EXPORTER_OTLP_ENDPOINT`
at a local OTLP/HTTP receiver, every request sampled, the worst case), in alternating
order, and drives each at concurrency 50 (`--count`, 900 images, after 30 warm-up ones, as
`serve_targets.py` does). `--sample R` traces a share R of the uploads instead, by the
standard sampler a deployment would set (`OTEL_TRACES_SAMPLER=parentbased_traceidratio`,
`OTEL_TRACES_SAMPLER_ARG=R`). Compared within the round (this VM's speed drifts): IRAS's CPU
per image (gateway and workers; the embedded AWS, which tracing does not touch, apart)
and throughput, on over off. Target: a few percent of CPU per image.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests.telemetry`, `benchmarks`

from benchmarks.serve_targets import DEFAULT_IMAGES, drive, print_medians
from tests.telemetry.otlp_receiver import otlp_receiver

from iras.bench.serve_process import serving

OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
)


def measured(images: Path, count: int) -> dict[str, Any]:
    with serving() as served:
        report = drive(served.url, served.pid, images, concurrency=50, count=count)
    cpu = report["cpu_s_per_image"]
    return {
        "ips": report["throughput_ips"],
        "cpu_ms": {role: seconds * 1000 for role, seconds in cpu.items()},
        "errors": report["errors"],
    }


def traced(images: Path, count: int) -> dict[str, Any]:
    """`measured` with every process of `iras serve` exporting its spans."""
    with otlp_receiver() as receiver:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
        try:
            figures = measured(images, count)
        finally:
            os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT")
        figures["spans"] = len(receiver.spans)
    return figures


def one_round(images: Path, count: int, on_first: bool) -> dict[str, Any]:
    if on_first:
        on, off = traced(images, count), measured(images, count)
    else:
        off, on = measured(images, count), traced(images, count)
    return {
        "off": off,
        "on": on,
        "cpu_ratio": on["cpu_ms"]["iras"] / off["cpu_ms"]["iras"],
        "throughput_ratio": on["ips"] / off["ips"],
    }


def describe(number: int, figures: dict[str, Any]) -> str:
    off, on = figures["off"], figures["on"]
    return (
        f"round {number}: CPU per image (gateway + workers) on {on['cpu_ms']['iras']:.2f} ms "
        f"(gateway {on['cpu_ms']['gateway']:.2f}, workers {on['cpu_ms']['worker']:.2f}) / off "
        f"{off['cpu_ms']['iras']:.2f} ms (gateway {off['cpu_ms']['gateway']:.2f}, workers "
        f"{off['cpu_ms']['worker']:.2f}) = {figures['cpu_ratio']:.3f}x | throughput "
        f"{on['ips']:.1f} / {off['ips']:.1f} images/s = {figures['throughput_ratio']:.3f}x | "
        f"spans {on['spans']}, errors {off['errors'] + on['errors']}"
    )


def main() -> None:
    os.environ.setdefault("IRAS_RATE_LIMIT_PER_S", "0")  # as serve_targets.py, and why
    for name in OTEL_VARIABLES:  # "off" must be off
        os.environ.pop(name, None)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=900, help="images per run")
    parser.add_argument("--sample", type=float, help="trace this share of uploads (0-1)")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    args = parser.parse_args()
    if args.sample is not None:  # read by every process's SDK; none traces while "off"
        os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        os.environ["OTEL_TRACES_SAMPLER_ARG"] = str(args.sample)
    rounds = []
    for number in range(1, args.rounds + 1):
        rounds.append(one_round(args.images, args.count, on_first=number % 2 == 0))
        if not args.json:
            print(describe(number, rounds[-1]), flush=True)
    if args.json:
        print(json.dumps(rounds, indent=2))
        return
    names = {"cpu_ratio": "CPU per image, on/off", "throughput_ratio": "throughput, on/off"}
    print_medians(rounds, names, digits=3)


if __name__ == "__main__":
    main()
