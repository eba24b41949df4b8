"""`iras gateway`: the web tier alone, against the configured AWS.

`iras serve` is the whole system on one machine: it starts an embedded AWS whenever no
endpoint is configured (which is also how real AWS is configured) and runs local worker
processes. On AWS the gateway runs by itself (in the web image, or on any host) and the
app tier runs on EC2, so this command starts only the FastAPI app: no embedded AWS, no
provisioning (`iras provision` does that once), no local workers. The autoscaler in it
launches EC2 instances from IRAS_WORKER_LAUNCH_TEMPLATE or IRAS_WORKER_IMAGE_ID.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from iras.settings_cli import load_settings


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
        help="folder of the live page (default: the checkout's static/)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: other commands should not pay for a web server.
    import uvicorn

    from iras.web.app import DEFAULT_STATIC_DIR, create_app

    settings = load_settings(endpoint_url=args.endpoint_url)
    static_dir = args.static_dir or DEFAULT_STATIC_DIR
    uvicorn.run(
        create_app(settings, static_dir=static_dir),
        host=args.host,
        port=args.port,
        log_level="info",
        access_log=False,
    )
    return 0
