"""`iras serve`: the whole system on one machine.

Starts the embedded AWS (unless an endpoint is configured), provisions it, runs local
worker processes and the gateway until Ctrl-C or SIGTERM, then stops everything it
started, in reverse order: gateway, workers (gracefully), embedded AWS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator

from iras.settings_cli import load_settings

log = logging.getLogger("iras.serve")

_STOP_GRACE_S = 30.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run IRAS on this machine (embedded AWS, workers, gateway)",
        description=(
            "Run the whole system on one machine: the embedded AWS on 127.0.0.1 (unless "
            "IRAS_ENDPOINT_URL or AWS_ENDPOINT_URL names one), its buckets and queues, local "
            "worker processes and the gateway. Ready when GET /readyz answers 200. Ctrl-C "
            "stops everything it started."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of the gateway")
    parser.add_argument("--port", type=int, default=8000, help="port of the gateway")
    parser.add_argument(
        "--aws-port", type=int, default=4566, help="port of the embedded AWS (0: any free port)"
    )
    parser.add_argument("--workers", type=int, default=1, help="local worker processes to run")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `iras predict` should not pay for a web server.
    import uvicorn

    from iras.cli.provision import provision_with_clients
    from iras.local_aws import dummy_credentials, embedded_aws
    from iras.web import create_app

    settings = load_settings()
    with contextlib.ExitStack() as stack:
        endpoint = settings.endpoint_url or stack.enter_context(embedded_aws(args.aws_port))
        env = {**os.environ, **dummy_credentials(os.environ), "IRAS_ENDPOINT_URL": endpoint}
        os.environ.update(env)
        settings = load_settings(endpoint_url=endpoint)
        asyncio.run(provision_with_clients(settings))
        print(f"IRAS: AWS at {endpoint}", flush=True)
        stack.enter_context(local_workers(args.workers, env))
        print(f"IRAS: {args.workers} worker(s) started", flush=True)
        print(f"IRAS: open http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
        uvicorn.run(
            create_app(settings), host=args.host, port=args.port, log_level="info", access_log=False
        )
        print("IRAS: stopping", flush=True)
    return 0


@contextlib.contextmanager
def local_workers(count: int, env: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Run `count` worker processes; on exit SIGTERM them and wait, then kill stragglers."""
    worker_env = {**env, "IRAS_IDLE_EXIT_S": env.get("IRAS_IDLE_EXIT_S", "0")}
    workers = [
        # A session of their own: a Ctrl-C at the terminal reaches `iras serve` alone, which
        # then stops the workers gracefully (SIGTERM), in order.
        subprocess.Popen(
            [sys.executable, "-m", "iras.worker"], env=worker_env, start_new_session=True
        )
        for _ in range(count)
    ]
    try:
        yield workers
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        deadline = time.monotonic() + _STOP_GRACE_S
        for worker in workers:
            try:
                worker.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
