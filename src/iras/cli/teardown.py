"""`iras teardown`: remove what `iras provision` made, asking before deleting data."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from iras.config.loading import load_settings

if TYPE_CHECKING:
    from iras.config import Settings
    from iras.infra.teardown import TeardownPlan

#: Exit code when the user declined: nothing was removed.
DECLINED = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "teardown",
        help="remove the buckets, queues and (--fleet) launch template and group provision made",
        description=(
            "Remove the request queue, its dead-letter queue and the input and output "
            "buckets; with --fleet also the workers' launch template, their Auto Scaling "
            "group (IRAS_ASG_NAME) and any app-tier instances still running. Buckets that hold objects are emptied only after "
            "you confirm (or with --yes); answering no removes nothing and exits 1. "
            "Safe to run when nothing exists."
        ),
    )
    parser.add_argument(
        "--endpoint-url", help="AWS endpoint (IRAS_ENDPOINT_URL / AWS_ENDPOINT_URL)"
    )
    parser.add_argument(
        "--fleet",
        action="store_true",
        help=(
            "also remove the launch template and the Auto Scaling group, and terminate "
            "app-tier instances"
        ),
    )
    parser.add_argument(
        "--yes", "-y", action="store_true", help="delete non-empty buckets without asking"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(endpoint_url=args.endpoint_url)
    return asyncio.run(_run(settings, fleet=args.fleet, yes=args.yes))


async def _run(settings: Settings, fleet: bool, yes: bool) -> int:
    """Plan, show the plan, ask when a bucket holds objects, remove: one set of clients."""
    from iras.aws import open_clients
    from iras.infra.teardown import plan_teardown, tear_down

    async with open_clients(settings) as aws:
        plan = await plan_teardown(settings, aws, fleet)
        if plan.is_empty:
            print("nothing to remove: none of IRAS's resources exist here")
            return 0
        print("to remove:")
        for line in plan.describe():
            print(f"  {line}")
        if plan.non_empty_buckets and not yes:
            question = full_buckets_question(plan)
            if not await asyncio.to_thread(confirm, question):
                print(
                    "iras teardown: cancelled, nothing was removed. The buckets hold "
                    "objects; answer y, or pass --yes, to delete them.",
                    file=sys.stderr,
                )
                return DECLINED
        await tear_down(plan, aws, settings)
    print("removed. SQS allows a deleted queue's name again only after 60 s.")
    return 0


def full_buckets_question(plan: TeardownPlan) -> str:
    names = ", ".join(bucket.describe() for bucket in plan.non_empty_buckets)
    return f"Delete every object in {names}? [y/N] "


def confirm(question: str) -> bool:
    """Ask on the terminal; anything but y/yes, or no terminal at all, is a no."""
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}
