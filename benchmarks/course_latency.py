"""The CSE546 course's latency figure against `iras serve --course`: from a cold fleet and
a warm one.

    .venv/bin/python benchmarks/course_latency.py [--images ../shared/data/imagenet-sample-100]
        [--rounds 2] [--json course_latency.json]

The course's figure is the wall time of 100 concurrent requests (its 2024-2026 workload
generator: 100 threads, one `inputFile` part each, to `/`) divided by 100; full marks
below 1.2 s. Cold: the fleet at 0 (the preset's rest), so the burst waits for workers to
start. Warm: the same preset with `IRAS_MIN_WORKERS=15`, once all 15 workers are up
(how long that took is reported: 15 processes loading the model on this machine's
cores). Each round also reports the most app-tier instances seen running (the course
wants its cap, 15), and how long after the last answer the fleet was back at 0 (cold
only: a warm fleet stays at its floor). Every answer is checked against the model's own
label. `iras serve` runs with its own embedded AWS; the course's view is
`tests/course_checks.py`'s.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Run as a script from the repository's root: the course's view lives in tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.course_checks import FleetSampler, course_clients, post_input_file, running
from tests.support import image_bytes

from iras.config import Settings
from iras.model import Prediction, load_classifier
from iras.scaler.fleet import HEARTBEAT_TAG

#: What `iras serve` runs the model in (IRAS_MODEL_PRECISION), so that labels match.
PRECISION = Settings().model_precision

STUDENT = "1234567890"
CAP = 15
SUFFIXES = {".jpg", ".jpeg", ".png"}
IRAS_SERVE = (sys.executable, "-m", "iras", "serve", "--course", STUDENT)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def labelled_images(folder: Path, count: int) -> dict[str, tuple[bytes, str]]:
    """`count` images (from `folder` if present, else generated): name -> (bytes, label)."""
    if folder.is_dir():
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)[:count]
        named = [(path.name, path.read_bytes()) for path in paths]
    else:
        named = [(f"test_{n:02d}.jpg", image_bytes(seed=300 + n)) for n in range(count)]
    classifier = load_classifier("efficientnet_lite0", threads=1, precision=PRECISION)
    labelled = {}
    for (name, blob), outcome in zip(
        named, classifier.classify([b for _, b in named]), strict=True
    ):
        assert isinstance(outcome, Prediction), (name, outcome)
        labelled[name] = (blob, outcome.label)
    return labelled


@contextmanager
def course_serve(log: Path, **env: str) -> Iterator[tuple[str, str]]:
    """`iras serve --course` with its own embedded AWS, ready: (gateway URL, AWS URL)."""
    port, aws_port = free_port(), free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IRAS_")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*IRAS_SERVE, "--port", str(port), "--aws-port", str(aws_port)],
            env={**clean, "IRAS_RESULT_CACHE": "false", **env},  # round 2 sends the same images
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while not ready(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"iras serve did not get ready: see {log}")
                time.sleep(0.2)
            yield url, f"http://127.0.0.1:{aws_port}"
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def workers_up(ec2: Any) -> int:
    """App-tier instances whose worker has started (it tags its instance as it does)."""
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": "tag:Name", "Values": ["app-tier-instance-*"]},
            {"Name": "instance-state-name", "Values": ["running"]},
            {"Name": "tag-key", "Values": [HEARTBEAT_TAG]},
        ]
    )
    return sum(len(r["Instances"]) for page in pages for r in page["Reservations"])


def burst(
    url: str, ec2: Any, images: dict[str, tuple[bytes, str]], *, cold: bool
) -> dict[str, Any]:
    """The generator's 100 concurrent requests: the course's figure and the fleet's."""
    with FleetSampler(ec2) as fleet, concurrent.futures.ThreadPoolExecutor(len(images)) as pool:
        started = time.monotonic()
        futures = {
            name: pool.submit(post_input_file, url, name, blob)
            for name, (blob, _) in images.items()
        }
        answers = {name: future.result() for name, future in futures.items()}
        wall_s = time.monotonic() - started
        answered = time.monotonic()
        back_to_zero_s = None
        while cold and time.monotonic() - answered < 120:
            if fleet.counts and fleet.counts[-1] == 0 and len(fleet.counts) > 1:
                back_to_zero_s = time.monotonic() - answered
                break
            time.sleep(0.1)
    wrong = [
        name
        for name, (status, text) in answers.items()
        if status != 200 or text.split(":", 1)[1] != images[name][1]
    ]
    return {
        "requests": len(images),
        "wall_s": round(wall_s, 2),
        "course_latency_s": round(wall_s / len(images), 3),
        "wrong": wrong,
        "most_app_tier_running": max(fleet.counts, default=0),
        "back_to_zero_after_last_answer_s": None
        if back_to_zero_s is None
        else round(back_to_zero_s, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=Path("../shared/data/imagenet-sample-100"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    images = labelled_images(args.images, 100)
    logs = Path(tempfile.mkdtemp(prefix="course-latency-"))
    report: dict[str, Any] = {"cold": [], "warm": []}

    with course_serve(logs / "cold.log") as (url, aws):
        ec2 = course_clients(aws)["ec2"]
        for _ in range(args.rounds):
            while running(ec2, "app-tier-instance-*"):  # each round from a fleet at rest
                time.sleep(0.5)
            report["cold"].append(burst(url, ec2, images, cold=True))
            print("cold:", report["cold"][-1], flush=True)

    with course_serve(logs / "warm.log", IRAS_MIN_WORKERS=str(CAP)) as (url, aws):
        ec2 = course_clients(aws)["ec2"]
        started = time.monotonic()
        while workers_up(ec2) < CAP:
            if time.monotonic() - started > 600:
                raise SystemExit(f"only {workers_up(ec2)} of {CAP} workers up after 600 s")
            time.sleep(0.5)
        report["fifteen_workers_up_s"] = round(time.monotonic() - started, 1)
        print(f"warm: {CAP} workers up in {report['fifteen_workers_up_s']} s", flush=True)
        for _ in range(args.rounds):
            report["warm"].append(burst(url, ec2, images, cold=False))
            print("warm:", report["warm"][-1], flush=True)

    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    print(f"logs in {logs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
