"""`iras classify PATH...`: classify images with a running gateway, with a progress bar.

One file per request (`POST /v1/classify?wait=true`, field `files`), `--concurrency` of
them in flight, rather than batches of files per request:

- the gateway accepts a request whole or refuses it whole, so in a batch one non-image
  would fail every image with it; one file per request fails only that file, with its
  own reason;
- a batch answers when its slowest image is done, so a bar fed by batches moves in jumps
  and a lost connection loses a whole batch;
- batching across requests is the service's job already: the gateway gathers concurrent
  uploads into `SendMessageBatch` calls and the workers batch what they receive, so
  concurrent single-file requests fill the model's batches as well as big requests do.

A 503 (the gateway not ready yet, or its storage briefly unavailable) is retried twice,
one and then two seconds later; other failures are final. Exit codes: 0 every image
classified, 1 any image failed (each listed on stderr with its reason), 2 the gateway
could not be reached or the arguments were wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from iras.client.files import IMAGE_SUFFIXES, find_images

if TYPE_CHECKING:
    from iras.client.gateway import Answer

DEFAULT_URL = "http://127.0.0.1:8000"
FORMATS = ("table", "csv", "json")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "classify",
        help="classify images with a running gateway (progress bar; table, CSV or JSON)",
        description=(
            "Send images to a running IRAS gateway, several at a time, and print one row "
            "per file: its label and score, or why it failed. Exit code 1 if any image "
            "failed, 2 if the gateway cannot be reached."
        ),
    )
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help=f"image files, or folders searched at any depth for {'/'.join(IMAGE_SUFFIXES)} files",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("IRAS_URL", DEFAULT_URL),
        help="the gateway (default: $IRAS_URL, else %(default)s)",
    )
    parser.add_argument(
        "--concurrency", type=_positive, default=8, help="requests in flight (default: 8)"
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="table (default), csv or json; with --output, guessed from its suffix",
    )
    parser.add_argument(
        "--output", "-o", type=Path, help="write the results to this file instead of stdout"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to wait for one image's answer (default: %(default)s)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: `iras --help` and the other commands should not pay for aiohttp and rich.
    from iras.client.gateway import GatewayUnreachable
    from iras.client.output import format_for
    from iras.client.progress import wanted
    from iras.client.sending import classify_all

    found = find_images(args.paths)
    for problem in found.problems:
        print(f"iras classify: {problem}", file=sys.stderr)
    if not found.files:
        print("iras classify: no images to classify", file=sys.stderr)
        return 1 if found.problems else 2
    try:
        answers = asyncio.run(
            classify_all(
                args.url,
                found.files,
                concurrency=args.concurrency,
                timeout_s=args.timeout,
                show_progress=wanted(args.quiet),
            )
        )
    except GatewayUnreachable as error:
        print(f"iras classify: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("iras classify: interrupted", file=sys.stderr)
        return 130
    write_results(found.files, answers, format_for(args.output, args.format), args.output)
    failed = [(p, a) for p, a in zip(found.files, answers, strict=True) if not a.ok]
    if not args.quiet:
        print(
            f"iras classify: {len(answers) - len(failed)} classified, {len(failed)} failed",
            file=sys.stderr,
        )
    for path, answer in failed:
        print(f"{path}: error: {answer.error}", file=sys.stderr)
    return 1 if failed or found.problems else 0


def write_results(
    files: Sequence[Path], answers: Sequence[Answer], fmt: str, output: Path | None
) -> None:
    """To `output`, or stdout: a table in colour on a terminal, else at its natural width."""
    from iras.client.output import as_table, render

    if output is not None:
        output.write_text(render(files, answers, fmt), encoding="utf-8")
        return
    if fmt == "table" and sys.stdout.isatty():
        from rich.console import Console

        Console().print(as_table(files, answers))
        return
    sys.stdout.write(render(files, answers, fmt))
    sys.stdout.flush()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
