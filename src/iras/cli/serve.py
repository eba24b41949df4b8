"""`iras serve`: the whole system on one machine.

Starts the embedded AWS (unless an endpoint is configured), provisions it, and runs the
gateway with its autoscaler, whose fleet of app-tier instances gets one local worker
process each, until Ctrl-C or SIGTERM; then it stops everything it started, in reverse
order: gateway, workers (gracefully), embedded AWS.

`--endpoint-url` joins an AWS endpoint that is already there (another `iras serve`'s
embedded AWS) instead: two gateways on one machine share one fleet, whose autoscaler
runs in whichever holds the scaler's lease (`iras.scaler.lease`). Each gateway's runner
looks after the worker processes it started, and only the leader's starts new ones
(`iras.scaler.local_runner`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys

from iras import extras
from iras.cli.gateway import uvicorn_options
from iras.config import Settings
from iras.config.loading import load_settings

log = logging.getLogger("iras.serve")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run IRAS on this machine (embedded AWS, workers, gateway)",
        description=(
            "Run the whole system on one machine: the embedded AWS on 127.0.0.1 (unless "
            "IRAS_ENDPOINT_URL or AWS_ENDPOINT_URL names one), its buckets and queues, and "
            "the gateway with its autoscaler, which runs one local worker process per "
            "app-tier instance (0 at rest, up to the core count). Ready when GET /readyz "
            "answers 200. Ctrl-C stops everything it started."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of the gateway")
    parser.add_argument("--port", type=int, default=8000, help="port of the gateway")
    parser.add_argument(
        "--aws-port", type=int, default=4566, help="port of the embedded AWS (0: any free port)"
    )
    parser.add_argument(
        "--endpoint-url",
        help="join this AWS endpoint (e.g. another `iras serve`'s embedded AWS, "
        "http://127.0.0.1:4566) instead of starting one (IRAS_ENDPOINT_URL)",
    )
    parser.add_argument("--min-workers", type=int, help="fewest workers (IRAS_MIN_WORKERS)")
    parser.add_argument(
        "--max-workers", type=int, help="most workers (IRAS_MAX_WORKERS; default: core count)"
    )
    parser.add_argument(
        "--latency-target-s",
        type=float,
        help="p95 upload -> result target in seconds: the autoscaler keeps the smallest fleet "
        "that meets it (IRAS_LATENCY_TARGET_S; default: scale to zero once idle)",
    )
    parser.add_argument(
        "--course",
        metavar="ID",
        help="the CSE546 course preset for this student id: <id>-in-bucket, <id>-out-bucket, "
        "<id>-req-queue, <id>-resp-queue, web-instance and up to 15 app-tier-instance-<n> "
        "(IRAS_COURSE_ID; README, For CSE546 students)",
    )
    parser.add_argument(
        "--print-env",
        action="store_true",
        help="with --course: print the preset's IRAS_* settings (for `iras gateway` on AWS) "
        "and exit",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.course:
        os.environ["IRAS_COURSE_ID"] = args.course
    if args.print_env:
        return print_course_env()
    if args.latency_target_s is not None:  # the environment, so that every process sees it
        os.environ["IRAS_LATENCY_TARGET_S"] = str(args.latency_target_s)
    if args.endpoint_url:
        os.environ["IRAS_ENDPOINT_URL"] = args.endpoint_url
    settings = load_settings()
    # Workers here, and the embedded AWS unless an endpoint is configured: without the
    # extra that brings them, one line now rather than tracebacks from every process.
    problem = extras.check("iras serve", "worker" if settings.endpoint_url else "local")
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    # Imported here, not at the top: `iras predict` should not pay for a web server.
    import uvicorn

    from iras.cli.provision import provision_with_clients
    from iras.infra.bake import prepare as prepare_model
    from iras.local_aws import dummy_credentials, embedded_aws
    from iras.runtime import freeze_startup_objects
    from iras.web import create_app

    with contextlib.ExitStack() as stack:
        endpoint = settings.endpoint_url or stack.enter_context(embedded_aws(args.aws_port))
        # Short long polls on one machine: a worker being scaled in (or Ctrl-C) waits for
        # its polls to return, so that no message is caught by a cancelled one.
        os.environ.setdefault("IRAS_RECEIVE_WAIT_S", "5")
        # Local processes: a worker takes seconds to start, not an instance's 40, and no
        # one bills a minimum for it.
        os.environ.setdefault("IRAS_WORKER_BOOT_S", "3")
        os.environ.setdefault("IRAS_BILLING_MINIMUM_S", "0")
        # A local worker is up in seconds: its heartbeat is checked as often, and one that
        # stops beating is replaced after 20 s. Its "instance" is a record in the embedded
        # AWS, which it watches: nothing else would stop it once the record is terminated.
        os.environ.setdefault("IRAS_WORKER_HEARTBEAT_S", "2")
        os.environ.setdefault("IRAS_WORKER_SILENT_S", "20")
        os.environ.setdefault("IRAS_INSTANCE_WATCH", "true")
        os.environ.update(
            {
                **dummy_credentials(os.environ),
                "IRAS_ENDPOINT_URL": endpoint,
                # The local stand-in for an AMI: any id does for the embedded AWS.
                "IRAS_WORKER_IMAGE_ID": os.environ.get(
                    "IRAS_WORKER_IMAGE_ID", "ami-0123456789abcdef0"
                ),
            }
        )
        settings = load_settings(
            endpoint_url=endpoint,
            local_instances=True,
            min_workers=args.min_workers,
            max_workers=args.max_workers,
        )
        asyncio.run(provision_with_clients(settings))
        prepare_model(settings)  # the export and int8 file made once, not by each worker
        if settings.fleet == "asg":  # the group the scaler sizes, and its launch template
            from iras.cli.provision import provision_fleet
            from iras.scaler.controller import scaling_config

            cap = scaling_config(settings).max_workers
            asyncio.run(provision_fleet(settings.model_copy(update={"max_workers": cap})))
        web_instance = asyncio.run(_register_web_instance(settings))
        if web_instance is not None:  # terminated at stop, before the embedded AWS ends
            stack.callback(lambda: asyncio.run(_deregister_web_instance(settings, web_instance)))
        print(f"IRAS: AWS at {endpoint} (its EC2 API shows the workers)", flush=True)
        print(f"IRAS: open http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
        uvicorn.run(
            create_app(settings, on_started=freeze_startup_objects),
            host=args.host,
            port=args.port,
            **uvicorn_options(settings),
        )
        print("IRAS: stopping", flush=True)
    return 0


def print_course_env() -> int:
    """`--print-env`: the course preset as an env file, or exit 2 without a course id."""
    from iras.config.course import env_file

    if not os.environ.get("IRAS_COURSE_ID"):
        print(
            "iras serve: --print-env prints the course preset: give --course <id>", file=sys.stderr
        )
        return 2
    load_settings()  # fills the preset in and checks it, as `iras serve --course` would
    print(env_file(os.environ), end="")
    return 0


async def _register_web_instance(settings: Settings) -> str | None:
    from iras.aws import open_clients
    from iras.local_aws.web_instance import register_web_instance

    async with open_clients(settings) as aws:
        return await register_web_instance(aws.ec2, settings)


async def _deregister_web_instance(settings: Settings, instance_id: str) -> None:
    from iras.aws import open_clients
    from iras.local_aws.web_instance import deregister_web_instance

    async with open_clients(settings) as aws:
        await deregister_web_instance(aws.ec2, instance_id)
