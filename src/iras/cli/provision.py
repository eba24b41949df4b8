"""`iras provision`: create or update the buckets and queues on the configured AWS."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from iras.settings_cli import load_settings

if TYPE_CHECKING:
    from iras.config import Settings
    from iras.provision import Resources


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "provision",
        help="create or update buckets and queues (idempotent)",
        description=(
            "Create, or bring in line with the settings, the input and output buckets, the "
            "request queue and its dead-letter queue on the configured AWS endpoint. "
            "Safe to run any number of times."
        ),
    )
    parser.add_argument(
        "--endpoint-url", help="AWS endpoint (IRAS_ENDPOINT_URL / AWS_ENDPOINT_URL)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(endpoint_url=args.endpoint_url)
    resources = asyncio.run(provision_with_clients(settings))
    print(f"input bucket:      s3://{resources.input_bucket}")
    print(f"output bucket:     s3://{resources.output_bucket}")
    print(f"request queue:     {resources.request_queue_url}")
    print(f"dead-letter queue: {resources.dead_letter_queue_url}")
    return 0


async def provision_with_clients(settings: Settings) -> Resources:
    from iras.aws import open_clients
    from iras.provision import provision

    async with open_clients(settings) as aws:
        return await provision(settings, aws)
