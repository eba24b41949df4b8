"""A client of the course's `POST /upload` that retries what a client must, and keeps books.

What it sends again, and when:

- a **503**: after its Retry-After (seconds). A 503 without one is counted apart (every
  503 must carry one) and sent again after `MISSING_RETRY_AFTER_S`;
- a **dropped connection** (refused, reset, closed before an answer: a gateway that was
  restarted): after a short backoff, `drop_backoff_s`;
- a **client-side timeout** (no answer within `READ_TIMEOUT_S`): counted apart, sent again.

Everything else is final. A 200 is right when its body is exactly `<name>:<label>`, the
label the model gives that image, and wrong otherwise; any other status (a 504 after
`IRAS_WAIT_TIMEOUT_S`, a 429, a 500) ends the image's tries.

**Lost**: an image for which the client never got a right answer: none of its attempts
got a 200 with the right `name:label` before its tries ended (a final status other than
200 or 503, a wrong 200, or `MAX_ATTEMPTS` attempts all refused or dropped). Every wrong
image is therefore lost too; `wrong` counts the 200s with a wrong body on their own.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from iras.messages import name_stem

#: Wait before sending again after a 503 that said nothing about when.
MISSING_RETRY_AFTER_S = 1.0
#: Attempts per image before it counts as lost; at a Retry-After of 1-2 s and drops
#: backed off up to 2 s, this outlasts any of the planned faults several times over.
MAX_ATTEMPTS = 60
#: Longest an attempt waits for its answer: beyond the gateway's own wait (120 s by
#: default, then 504), so that the client never gives up before the gateway does.
READ_TIMEOUT_S = 300.0
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Upload:
    """One image to upload, under a name of its own, and the answer it must get."""

    name: str
    blob: bytes
    label: str

    @property
    def expected(self) -> str:
        return f"{name_stem(self.name)}:{self.label}"


@dataclass(slots=True)
class Outcome:
    """One image as its client saw it, over all its attempts."""

    name: str
    started: float  # time.monotonic() of the first attempt
    elapsed_s: float = 0.0  # first attempt to final answer
    attempts: int = 0
    status: int | None = None  # of the final answer; None if none came
    right: bool = False
    body: str = ""


@dataclass(frozen=True, slots=True)
class Drop:
    """An attempt whose connection was lost before an answer."""

    at: float  # time.monotonic()
    error: str


def retry_delay_s(status: int, retry_after: str | None) -> float | None:
    """Seconds to wait before sending an image again after this answer, or None when the
    answer is final (only a 503 is sent again)."""
    if status != 503:
        return None
    if retry_after is None:
        return MISSING_RETRY_AFTER_S
    try:
        return max(0.0, float(retry_after))
    except ValueError:  # an HTTP date: the gateway sends seconds, so this is a bug
        return MISSING_RETRY_AFTER_S


def drop_backoff_s(drops_so_far: int) -> float:
    """Wait after the n-th dropped attempt of an image: 0.2 s doubling to 2 s (a restart
    takes seconds; hammering a closed port shortens nothing)."""
    return float(min(2.0, 0.2 * 2 ** min(drops_so_far, 4)))


@dataclass
class Books:
    """What every attempt came to, and how many images are done (for the fault plan)."""

    outcomes: list[Outcome] = field(default_factory=list)
    #: 503s by their JSON `error` code, with and without Retry-After.
    refused: Counter[str] = field(default_factory=Counter)
    refused_without_retry_after: Counter[str] = field(default_factory=Counter)
    drops: list[Drop] = field(default_factory=list)
    #: The name of the image each drop belongs to, in step with `drops`.
    dropped_names: list[str] = field(default_factory=list)
    timeouts: int = 0
    done: int = 0
    _progress: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def reached(self, done: int) -> None:
        """Return once `done` images have their final answer."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.done >= done)

    async def finished(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        async with self._progress:
            self.done += 1
            self._progress.notify_all()

    def refusal(self, response: httpx.Response) -> None:
        code = _error_code(response)
        if "retry-after" in response.headers:
            self.refused[code] += 1
        else:
            self.refused_without_retry_after[code] += 1

    def dropped(self, name: str, error: str) -> None:
        self.drops.append(Drop(time.monotonic(), error))
        self.dropped_names.append(name)

    def drop_images(self, first: float, last: float) -> set[str]:
        """The images with at least one attempt dropped between `first` and `last`."""
        return {
            name
            for drop, name in zip(self.drops, self.dropped_names, strict=True)
            if first <= drop.at <= last
        }

    @property
    def lost(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.right]

    @property
    def wrong(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 200 and not o.right]


class RetryingUploader:
    """Uploads images at a fixed concurrency through one HTTP client, each one retried as
    the module's docstring says, into `books`."""

    def __init__(self, http: httpx.AsyncClient, concurrency: int, books: Books) -> None:
        self._http = http
        self._slots = asyncio.Semaphore(concurrency)
        self.books = books

    async def upload_all(self, uploads: Sequence[Upload]) -> None:
        await asyncio.gather(*(self._upload(upload) for upload in uploads))

    async def _upload(self, upload: Upload) -> None:
        async with self._slots:
            outcome = Outcome(upload.name, started=time.monotonic())
            drops = 0
            while outcome.attempts < MAX_ATTEMPTS:
                outcome.attempts += 1
                try:
                    response = await self._http.post(
                        "/upload", files={"myfile": (upload.name, upload.blob)}
                    )
                except httpx.TimeoutException:
                    self.books.timeouts += 1
                    continue
                except httpx.TransportError as error:
                    self.books.dropped(upload.name, repr(error))
                    await asyncio.sleep(drop_backoff_s(drops))
                    drops += 1
                    continue
                outcome.status, outcome.body = response.status_code, response.text
                delay_s = retry_delay_s(response.status_code, response.headers.get("retry-after"))
                if delay_s is None:
                    outcome.right = response.status_code == 200 and response.text == upload.expected
                    break
                self.books.refusal(response)
                await asyncio.sleep(delay_s)
            outcome.elapsed_s = time.monotonic() - outcome.started
        await self.books.finished(outcome)


def client_for(url: str, concurrency: int) -> httpx.AsyncClient:
    """An HTTP client with a connection per concurrent upload and the timeouts above."""
    return httpx.AsyncClient(
        base_url=url,
        timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", "?"))
    except ValueError:
        return "(not JSON)"
