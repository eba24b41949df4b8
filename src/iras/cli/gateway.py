"""`iras gateway`: the web tier alone, against the configured AWS.

`iras serve` is the whole system on one machine: it starts an embedded AWS whenever no
endpoint is configured (which is also how real AWS is configured) and runs local worker
processes. On AWS the gateway runs by itself (in the web image, or on any host) and the
app tier runs on EC2, so this command starts only the FastAPI app: no embedded AWS, no
provisioning (`iras provision` does that once), no local workers. The autoscaler in it
launches EC2 instances from IRAS_WORKER_LAUNCH_TEMPLATE or IRAS_WORKER_IMAGE_ID.

Unlike `iras serve`, whose AWS usually dies with it, this gateway outlives its own
restarts: systemd or Docker bring it back after a crash or a deploy, while workers go on
answering on its reply queue. So when IRAS_GATEWAY_ID is not set it takes a stable id,
`<host>-<port>`: the same after a restart on the same machine (or in the same container,
whose host name is its id), different for two gateways side by side on one machine, and
readable in the SQS console. A gateway with a stable id keeps its reply queue at stop and
drains it at the next start. Set IRAS_GATEWAY_ID where the host name does not survive a
restart (a recreated container, an ECS task): the queue is found by name, nothing else.
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
from pathlib import Path
from typing import Any

from iras.config import SQS_QUEUE_NAME_MAX, Settings
from iras.config.loading import load_settings
from iras.telemetry.logs import UVICORN_LOG_CONFIG, resolve_log_format


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "gateway",
        help="run only the gateway (web tier) against the configured AWS",
        description=(
            "Run the gateway and its autoscaler against the configured AWS (real AWS, or "
            "IRAS_ENDPOINT_URL): no embedded AWS, no local workers, no provisioning. Run "
            "`iras provision --fleet` first. Ready when GET /readyz answers 200."
        ),
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument(
        "--endpoint-url", help="AWS endpoint (IRAS_ENDPOINT_URL / AWS_ENDPOINT_URL)"
    )
    parser.add_argument(
        "--static-dir",
        type=Path,
        help="folder of the live page (default: the one shipped in the package)",
    )
    parser.set_defaults(run=run)


#: Idle keep-alive connections are kept longer than any client or load balancer keeps its
#: own (an ALB's idle timeout is 60 s, httpx's and aiohttp's pools 5 and 15 s): when the
#: server closes first, a request sent on the connection at that moment fails (a 502 from
#: a balancer, a read error in a client). uvicorn's default is 5 s.
KEEP_ALIVE_S = 75


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: other commands should not pay for a web server.
    import uvicorn

    from iras.runtime import freeze_startup_objects
    from iras.web.app import DEFAULT_STATIC_DIR, create_app

    settings = load_settings(endpoint_url=args.endpoint_url)
    if settings.gateway_id is None:
        stable = default_gateway_id(socket.gethostname(), args.port, settings.reply_queue_prefix)
        settings = settings.model_copy(update={"gateway_id": stable})
    static_dir = args.static_dir or DEFAULT_STATIC_DIR
    uvicorn.run(
        create_app(settings, static_dir=static_dir, on_started=freeze_startup_objects),
        host=args.host,
        port=args.port,
        **uvicorn_options(settings),
    )
    return 0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How `iras gateway` and `iras serve` run uvicorn, beside the app and the address.

    Client addresses: uvicorn takes the client's address from X-Forwarded-For (and the
    scheme from X-Forwarded-Proto) only when the peer is in IRAS_FORWARDED_ALLOW_IPS, so
    that behind a load balancer each user is a client of its own to the per-client limits,
    and nobody else can claim to be someone by sending the header. uvicorn would read its
    own FORWARDED_ALLOW_IPS otherwise: IRAS's setting is the one place it is configured.

    Logs: uvicorn keeps the configuration `iras.telemetry.logs` made (its lines propagate
    to the root logger). Its access line, one per request, is written only in JSON, for a
    log store to index (a route's ids join it: `request_id`, `job_id`); a terminal stays
    as quiet as it was, without a line for each poll of the live page.
    """
    return {
        "log_config": UVICORN_LOG_CONFIG,
        "log_level": "info",
        "access_log": resolve_log_format(settings.log_format, sys.stderr) == "json",
        "timeout_keep_alive": KEEP_ALIVE_S,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
    }


def default_gateway_id(hostname: str, port: int, reply_queue_prefix: str) -> str:
    """`<host>-<port>` as a valid gateway id: the host name's first label, with what SQS
    does not allow in a queue name replaced by '-', cut so that the queue name fits."""
    host = re.sub(r"[^A-Za-z0-9_-]+", "-", hostname.split(".")[0]).strip("-") or "gateway"
    tail = f"-{port}"
    room = SQS_QUEUE_NAME_MAX - len(reply_queue_prefix) - 1 - len(tail)
    return host[: max(room, 1)] + tail
