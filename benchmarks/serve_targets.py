"""Issue 5's end-to-end targets, in rounds: `iras serve` against the bare model, side by side.

    .venv/bin/python benchmarks/serve_targets.py [--images DIR] [--rounds 3] [--json]

Reads the images (and `labels.csv`) of `--images`, by default
`../shared/data/imagenet-sample-100`. Each round, with nothing else running:

1. the bare model at batch 8 (`iras bench --model-only`, 600 images);
2. a fresh `iras serve` (its defaults: 0-2 workers, the embedded AWS), driven at
   concurrency 50 (900 images) and then 1 (300), each after 30 warm-up images
   (`iras bench --url ... --pid ...`), then stopped;
3. the bare model at batch 8 again, then at batch 1 (300 images).

The three targets, each a ratio within its own round (this VM's speed drifts by 10-30%
from minute to minute, which two rounds apart would measure instead of IRAS):

- throughput: images/s at c=50 over the bare model's (the mean of its two runs), >= 0.5;
- CPU: IRAS's CPU per image at c=50 (gateway and workers, the embedded AWS excluded)
  over the bare model's, <= 1.3;
- latency: p50 at c=1 minus the bare model's p50 at batch 1, <= 30 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from iras.bench.serve_process import serving

DEFAULT_IMAGES = Path(__file__).resolve().parents[1].parent / "shared/data/imagenet-sample-100"


def bench(*args: str) -> dict[str, Any]:
    """One `iras bench ... --json` run's report."""
    command = [sys.executable, "-m", "iras", "bench", *args, "--json"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}{done.stdout[-3000:]}"
        )
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def model_only(images: Path, count: int, batch_size: int = 8) -> dict[str, Any]:
    return bench("--model-only", "--images", str(images), "--count", str(count),
                 "--batch-size", str(batch_size))  # fmt: skip


def drive(url: str, pid: int, images: Path, concurrency: int, count: int) -> dict[str, Any]:
    return bench("--url", url, "--pid", str(pid), "--images", str(images),
                 "--labels", str(images / "labels.csv"), "--count", str(count),
                 "--concurrency", str(concurrency), "--warmup", "30")  # fmt: skip


def one_round(images: Path) -> dict[str, Any]:
    before = model_only(images, 600)
    with serving() as served:
        full = drive(served.url, served.pid, images, concurrency=50, count=900)
        single = drive(served.url, served.pid, images, concurrency=1, count=300)
    after = model_only(images, 600)
    lone = model_only(images, 300, batch_size=1)
    model_ips = statistics.mean(run["throughput_ips"] for run in (before, after))
    model_cpu_ms = statistics.mean(
        run["cpu_s_per_image"]["total"] * 1000 for run in (before, after)
    )
    return {
        "model_ips": model_ips,
        "model_cpu_ms": model_cpu_ms,
        "model_b1_p50_ms": lone["latency_ms"]["p50"],
        "c50_ips": full["throughput_ips"],
        "c50_cpu_ms": {role: s * 1000 for role, s in full["cpu_s_per_image"].items()},
        "c1_p50_ms": single["latency_ms"]["p50"],
        "errors": full["errors"] + single["errors"],
        "top1": [run["accuracy"]["top1"] for run in (full, single)],
        "throughput_ratio": full["throughput_ips"] / model_ips,
        "cpu_ratio": full["cpu_s_per_image"]["iras"] * 1000 / model_cpu_ms,
        "latency_overhead_ms": single["latency_ms"]["p50"] - lone["latency_ms"]["p50"],
    }


def describe(number: int, figures: dict[str, Any]) -> str:
    cpu = figures["c50_cpu_ms"]
    return (
        f"round {number}: throughput {figures['c50_ips']:.1f} / {figures['model_ips']:.1f} "
        f"images/s = {figures['throughput_ratio']:.2f}x | CPU per image {cpu['iras']:.1f} ms "
        f"(gateway {cpu['gateway']:.1f}, workers {cpu['worker']:.1f}) / "
        f"{figures['model_cpu_ms']:.1f} ms = {figures['cpu_ratio']:.2f}x | c=1 p50 "
        f"{figures['c1_p50_ms']:.0f} - {figures['model_b1_p50_ms']:.1f} ms = "
        f"{figures['latency_overhead_ms']:.0f} ms | errors {figures['errors']}, top-1 "
        f"{' / '.join(f'{top1:.2f}' for top1 in figures['top1'])}"
    )


def main() -> None:
    # One client sends everything here, and on a machine where the service passes 100
    # images/s it outruns the default per-client limit (IRAS_RATE_LIMIT_PER_S, bursts of
    # 200) and gets 429s: this measures the service, not its limiter.
    os.environ.setdefault("IRAS_RATE_LIMIT_PER_S", "0")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    args = parser.parse_args()
    rounds = []
    for number in range(1, args.rounds + 1):
        rounds.append(one_round(args.images))
        if not args.json:
            print(describe(number, rounds[-1]), flush=True)
    if args.json:
        print(json.dumps(rounds, indent=2))
        return
    print_medians(
        rounds,
        {"throughput_ratio": "throughput", "cpu_ratio": "CPU", "latency_overhead_ms": "latency"},
    )


def print_medians(rounds: list[dict[str, Any]], names: dict[str, str], digits: int = 2) -> None:
    """One line per figure (`names`: key -> what to call it): its median and range."""
    for key, name in names.items():
        values = [figures[key] for figures in rounds]
        low, median, high = min(values), statistics.median(values), max(values)
        print(f"{name}: median {median:.{digits}f}, {low:.{digits}f}-{high:.{digits}f}")


if __name__ == "__main__":
    main()
