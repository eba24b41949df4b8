"""Load with faults, the issue's full run: 10,000 uploads at concurrency 50 while a worker
is SIGKILLed, the gateway is restarted and the AWS endpoint is unreachable for 5 s.

    .venv/bin/python benchmarks/soak_faults.py --images ../shared/data/imagenet-sample-100 \
        --json soak_faults.json

Starts an embedded AWS in its own process and runs `tests.soak.run.soak_with_faults` on
it (the suite's `tests/web/test_soak_faults.py` is the same run, shorter): an
`iras serve --endpoint-url` gateway reaching AWS through a TCP proxy that the outage
cuts, restarted with a fixed `IRAS_GATEWAY_ID`. The images (every one in `--images`, or
`--generated` synthetic ones when the folder is absent) are labelled by the real model
first, so that every answer is checked for its exact `name:label`. Prints the report's
summary and writes the whole report as JSON; the gateways' logs stay in `--log-dir`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

# Run as a script from the repository's root: the soak's client and plan live in tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.soak.client import Upload
from tests.soak.run import FaultPlan, SoakReport, soak_with_faults
from tests.support import image_bytes

from iras.config import Settings
from iras.local_aws import dummy_credentials, embedded_aws
from iras.model import Prediction, load_classifier

#: What `iras serve` runs the model in (IRAS_MODEL_PRECISION), so that labels match.
PRECISION = Settings().model_precision

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


def labelled_images(folder: Path, generated: int) -> list[Upload]:
    """The images of `folder` (or `generated` synthetic ones if it is absent), each with
    the label the real model gives it."""
    if folder.is_dir():
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
        named = [(path.name, path.read_bytes()) for path in paths]
    else:
        named = [(f"gen{n}.jpg", image_bytes(seed=3000 + n)) for n in range(generated)]
    classifier = load_classifier("efficientnet_lite0", threads=1, precision=PRECISION)
    uploads = []
    blobs = [blob for _, blob in named]
    for (name, blob), outcome in zip(named, classifier.classify(blobs), strict=True):
        if not isinstance(outcome, Prediction):
            raise SystemExit(f"{name}: the model cannot classify it ({outcome})")
        uploads.append(Upload(name, blob, outcome.label))
    return uploads


async def run(args: argparse.Namespace, images: list[Upload], log_dir: Path) -> SoakReport:
    plan = FaultPlan(
        uploads=args.uploads,
        concurrency=args.concurrency,
        outage_s=args.outage_s,
        restart_signal=signal.SIGTERM if args.restart_sigterm else signal.SIGKILL,
        visibility_timeout_s=args.visibility_timeout_s,
    )
    env = {
        "IRAS_GATEWAY_ID": "soak",
        "IRAS_VISIBILITY_TIMEOUT_S": str(args.visibility_timeout_s),
        # One client at concurrency 50 is a load generator, not an abuser.
        "IRAS_RATE_LIMIT_PER_S": "0",
        "IRAS_INFERENCE_THREADS": "1",
        "IRAS_RESULT_CACHE": "false",  # 100 images sent 100 times: load for the fleet
    }
    os.environ.update(dummy_credentials(os.environ))
    with embedded_aws(0) as endpoint:
        return await soak_with_faults(plan, images, endpoint, env, log_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=Path("../shared/data/imagenet-sample-100"))
    parser.add_argument("--generated", type=int, default=50, help="synthetic images if no folder")
    parser.add_argument("--uploads", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--outage-s", type=float, default=5.0)
    parser.add_argument("--visibility-timeout-s", type=int, default=60)
    parser.add_argument(
        "--restart-sigterm", action="store_true", help="restart with SIGTERM, not SIGKILL"
    )
    parser.add_argument("--json", type=Path, default=Path("soak_faults.json"))
    parser.add_argument("--log-dir", type=Path, help="gateway logs (default: a temporary one)")
    args = parser.parse_args()

    images = labelled_images(args.images, args.generated)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="iras-soak-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"{len(images)} images; gateway logs in {log_dir}", flush=True)
    report = asyncio.run(run(args, images, log_dir))
    print(report.summary())
    args.json.write_text(json.dumps(report.as_dict(), indent=2, default=str))
    print(f"report: {args.json}")


if __name__ == "__main__":
    main()
