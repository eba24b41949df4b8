"""Send many files to a gateway, a bounded number at a time, with a progress bar."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from iras.client.gateway import Answer, check_gateway, classify_v1, open_session
from iras.client.progress import progress_bar

#: Attempts per image when the gateway answers 503 (not ready, storage unavailable).
ATTEMPTS = 3


async def classify_all(
    url: str,
    files: Sequence[Path],
    *,
    concurrency: int,
    timeout_s: float,
    show_progress: bool,
) -> list[Answer]:
    """One answer per file, in order; raises `GatewayUnreachable` before sending anything.

    `concurrency` senders share one iterator over the files, so at most that many
    requests are in flight and each file is sent once.
    """
    answers: list[Answer | None] = [None] * len(files)
    pending = iter(enumerate(files))
    async with open_session(url, connections=concurrency, timeout_s=timeout_s) as http:
        await check_gateway(http, url)
        with progress_bar(len(files), enabled=show_progress) as bar:

            async def sender() -> None:
                for position, path in pending:
                    answer = await classify_file(http, path)
                    answers[position] = answer
                    bar.advance(failed=not answer.ok)

            await asyncio.gather(*(sender() for _ in range(min(concurrency, len(files)))))
    return [answer for answer in answers if answer is not None]


async def classify_file(http: aiohttp.ClientSession, path: Path) -> Answer:
    """Read and send one file; a 503 is retried one and then two seconds later."""
    try:
        blob = await asyncio.to_thread(path.read_bytes)
    except OSError as error:
        return Answer(path.name, error=f"cannot read it: {error.strerror or error}")
    answer = Answer(path.name)
    for attempt in range(ATTEMPTS):
        answer = await classify_v1(http, path.name, blob)
        if answer.status != 503 or attempt == ATTEMPTS - 1:
            break
        await asyncio.sleep(1.0 + attempt)
    return answer
