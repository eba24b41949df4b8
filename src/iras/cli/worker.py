"""`iras-worker`: run one app-tier worker until it is stopped or goes idle."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence

from iras import runtime
from iras.aws import AwsClients, open_clients
from iras.aws.errors import UNREACHABLE
from iras.aws.retry import retry_while_away
from iras.config import Settings
from iras.config.loading import load_settings
from iras.infra.provision import find_queue_url
from iras.model import ModelError
from iras.model.errors import require_model_packages
from iras.runtime import freeze_startup_objects
from iras.telemetry.logs import configure_logging
from iras.telemetry.tracing import WORKER_SERVICE, flush_tracing, start_tracing
from iras.worker.instance import (
    InstanceAgent,
    InstanceIdError,
    resolve_instance_id,
    stop_instance,
    terminate_instance,
)
from iras.worker.leader import LeaderProbe
from iras.worker.metrics import serve_metrics
from iras.worker.model_record import publish_model
from iras.worker.protection import ScaleInProtection, leave_group
from iras.worker.worker import ExitReason, Worker

#: Failures that end a worker's start with one log line: no model, no instance id, no
#: queue, no AWS.
_CANNOT_START: tuple[type[Exception], ...] = (
    ModelError,
    InstanceIdError,
    LookupError,
    *UNREACHABLE,
)
#: The shortest a starting worker waits for an unreachable AWS before it gives up.
MIN_STARTUP_WAIT_S = 10.0

log = logging.getLogger("iras.worker")

DESCRIPTION = """\
Run one IRAS app-tier worker. It long-polls the request queue, classifies images in
batches, writes each result to the output bucket and the requester's reply queue, and
deletes the request. On SIGTERM or SIGINT it stops receiving, hands back requests it has
not started, finishes the batch in hand and exits 0. With nothing to do for
IRAS_IDLE_EXIT_S seconds it exits by itself and, when it knows its EC2 instance
(IRAS_INSTANCE_ID, or 'auto' for the metadata service), terminates that instance.
With --burst it works until the queue is empty and nothing is in hand, then exits 0
(and leaves its instance alone). A worker whose work loop crashes hands back what it had
not started and exits 1, leaving its instance to what restarts it (systemd, on EC2).

Every setting is an IRAS_* environment variable (see the README's configuration table);
the options below override the most common ones. AWS credentials come from the standard
AWS chain; AWS_ENDPOINT_URL or IRAS_ENDPOINT_URL points at an emulated AWS.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iras-worker",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--endpoint-url", help="AWS endpoint (IRAS_ENDPOINT_URL)")
    parser.add_argument(
        "--model",
        dest="model_name",
        metavar="NAME|DIR|FILE.onnx",
        help="built-in model name, model folder or .onnx file (IRAS_MODEL)",
    )
    parser.add_argument("--engine", dest="model_engine", help="onnx or torch (IRAS_MODEL_ENGINE)")
    parser.add_argument(
        "--batch-size", type=int, help="most images per forward pass (IRAS_BATCH_SIZE)"
    )
    parser.add_argument(
        "--batch-wait-ms", type=int, help="wait for a partly filled batch (IRAS_BATCH_WAIT_MS)"
    )
    parser.add_argument(
        "--idle-exit-s",
        type=float,
        help="exit after this long with nothing to do (IRAS_IDLE_EXIT_S)",
    )
    parser.add_argument(
        "--instance-id", help="EC2 instance to terminate on idle exit, or 'auto' (IRAS_INSTANCE_ID)"
    )
    parser.add_argument("--name", dest="worker_name", help="name put in results (IRAS_WORKER_NAME)")
    parser.add_argument(
        "--burst", action="store_true", help="process what is queued, then exit 0 once it is empty"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Until the work loop installs its graceful handler, a stop request finds nothing
    # held: exit 0 at once (a worker scaled in while still loading its model).
    signal.signal(signal.SIGTERM, _exit_now)
    args = build_parser().parse_args(argv)
    try:
        configure_logging()  # IRAS_LOG_FORMAT, before the settings load
    except ValueError as error:
        print(f"iras-worker: {error}", file=sys.stderr)
        return 2
    options = vars(args)
    burst = options.pop("burst")  # how this run ends, not a setting
    settings = load_settings(**options)
    try:
        return runtime.run(run_worker(settings, burst=burst))
    except _CANNOT_START as error:
        log.error("%s", error)
        return 1


async def wait_for_request_queue(aws: AwsClients, settings: Settings) -> str | None:
    """The request queue's URL (None: no such queue), waiting out an unreachable AWS.

    A worker started while the endpoint is briefly away (a network blip as an instance
    boots, the embedded AWS restarting) would otherwise exit at once and cost a new
    instance. It waits, with backoff, for as long as an idle worker waits for work
    (`idle_exit_s`, at least `MIN_STARTUP_WAIT_S`; for ever if it never exits idle), then
    gives up: an instance that can never reach SQS must not run for ever. Answers from
    AWS (a refusal, a missing queue) are not waited out: they will not change.
    """
    patience_s = max(settings.idle_exit_s, MIN_STARTUP_WAIT_S) if settings.idle_exit_s else None
    return await retry_while_away(
        functools.partial(find_queue_url, aws.sqs, settings.request_queue),
        on=UNREACHABLE,
        failed="AWS unreachable",
        logger=log,
        timeout_s=patience_s,
        wait_max_s=5.0,
    )


def _exit_now(signum: int, frame: object) -> None:
    raise SystemExit(0)


async def _stop_when(gone: asyncio.Event, worker: Worker) -> None:
    """Stop `worker` gracefully once its instance is gone (a local worker's watch)."""
    await gone.wait()
    worker.stop()


async def run_worker(settings: Settings, *, burst: bool = False) -> int:
    """Load the model while connecting to AWS, work (with `burst`, until the queue is
    empty), end the own instance after an idle exit. The two start-up halves overlap
    because a cold start is what a request arriving at an empty fleet waits for.

    On an instance, the worker also beats its heartbeat from the start (its instance is
    claimed before the model has loaded) and leaves its idle exit to a live scaler."""
    require_model_packages()  # one line, not a traceback, without the worker extra
    from iras.model.registry import load_configured  # the engine loads here, not for --help

    start_tracing(WORKER_SERVICE)  # off unless OTEL_* configures it
    loading = asyncio.create_task(asyncio.to_thread(load_configured, settings))
    instance_id = await resolve_instance_id(settings.instance_id, settings.imds_url)
    async with open_clients(settings, concurrent_long_polls=settings.receivers) as aws:
        gone = asyncio.Event()
        agent = None
        if instance_id:
            agent = InstanceAgent(
                aws.ec2, instance_id, settings.worker_heartbeat_s, watch=settings.instance_watch
            )
            beating = asyncio.create_task(agent.run(gone.set), name="heartbeat")
        queue_url, classifier = await asyncio.gather(wait_for_request_queue(aws, settings), loading)
        if queue_url is None:
            raise LookupError(
                f"request queue {settings.request_queue!r} does not exist at "
                f"{settings.endpoint_url or 'AWS'}: run `iras provision` first"
            )
        leader = None
        if instance_id and settings.idle_exit_s > 0:
            leader = LeaderProbe(aws.objects, settings.records_bucket, settings.leader_lease_key)
        protection = None  # in an Auto Scaling group: kept from scale-in while busy
        if instance_id and settings.fleet == "asg":
            protection = ScaleInProtection(aws.autoscaling, settings.asg_name, instance_id)
        worker = Worker(
            settings,
            aws,
            classifier,
            request_queue_url=queue_url,
            name=settings.worker_name or instance_id or f"{socket.gethostname()}:{os.getpid()}",
            burst=burst,
            leader=leader,
            protection=protection,
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.stop)
        stopper = asyncio.create_task(_stop_when(gone, worker))
        # For GET /v1/models, beside the first receives rather than before them.
        recording = asyncio.create_task(
            publish_model(aws.objects, settings.records_bucket, classifier), name="model-record"
        )
        metrics_port = serve_metrics(worker.metrics.registry, settings.worker_metrics_port)
        freeze_startup_objects()
        reason = await worker.run()
        await asyncio.to_thread(flush_tracing)  # the last batches' spans, before the exit
        if metrics_port is not None:
            metrics_port.close()
        stopper.cancel()
        await recording
        if agent is not None:
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)
            if reason is not ExitReason.CRASHED:  # a crash leaves the heartbeat to go silent
                await agent.withdraw()  # a graceful end: this instance has no worker now
        if reason is ExitReason.IDLE and instance_id:
            if protection is not None:  # in a group, which relaunches what EC2 ends
                await leave_group(aws.autoscaling, instance_id)
            else:
                end_instance = stop_instance if settings.warm_pool else terminate_instance
                await end_instance(aws.ec2, instance_id)
    # A crash leaves the instance alone: systemd restarts the worker, and once its
    # restarts are used up ends the instance (deploy/app-tier/iras-worker-failed.service).
    return 1 if reason is ExitReason.CRASHED else 0
