"""Send one image to a gateway and turn whatever happens into an `Answer`.

Two protocols: `POST /v1/classify?wait=true` (field `files`, JSON with the result) and
the course's `POST /upload` (field `myfile`, plain text `name:label`). A 4xx/5xx answer,
a timeout or a dropped connection becomes an `Answer` with an `error` that says what
happened, so one bad image never stops a run. Only `open_session` and `check_gateway`,
used once before a run, raise: a gateway that cannot be reached at all is the caller's
problem to report.

The client is aiohttp, not httpx: `iras bench` runs on the machine it measures, and at
concurrency 50 httpx's pure-Python HTTP and connection pool cost 4-9 ms of CPU per
request, aiohttp's under 0.5 ms: CPU the bench would otherwise take from the service.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from iras.messages import name_stem

#: What can go wrong below HTTP. A `total` timeout raises a bare `TimeoutError`, which
#: is not an `aiohttp.ClientError`.
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)
#: Seconds to open a connection; the per-request timeout covers the whole answer.
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Answer:
    """One image's result: a label (with its score and ranking) or an error."""

    name: str
    label: str | None = None
    score: float | None = None
    top: tuple[tuple[str, float], ...] = field(default=())
    error: str | None = None
    request_id: str | None = None
    worker: str | None = None
    #: The HTTP status of a refused request, for retrying 503s; None otherwise.
    status: int | None = None
    #: The result's `timings` (where its time went, `iras bench`'s stages); None when the
    #: answer carried none (the course's plain-text answer, an error).
    timings: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


#: Sends (session, file name, image bytes) and answers.
Send = Callable[[aiohttp.ClientSession, str, bytes], Awaitable[Answer]]


class GatewayUnreachable(Exception):
    """The gateway did not answer, or what answered is not an IRAS gateway."""


def open_session(url: str, *, connections: int, timeout_s: float) -> aiohttp.ClientSession:
    """A session for the gateway at `url`, at most `connections` open; use it with `async with`.

    The base URL gets a trailing slash and requests use relative paths, so a gateway
    behind a path prefix (`http://host/iras`) is asked at `/iras/healthz`. No cookies: the
    gateway sets none, and an empty jar still costs time on every request.
    """
    try:
        base = URL(url if url.endswith("/") else f"{url}/")
    except ValueError as error:
        raise GatewayUnreachable(f"cannot reach the gateway at {url}: {error}") from None
    if base.scheme not in ("http", "https") or not base.host:
        raise GatewayUnreachable(
            f"cannot reach the gateway at {url}: give an http:// or https:// address"
        )
    return aiohttp.ClientSession(
        base_url=base,
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=timeout_s, sock_connect=CONNECT_TIMEOUT_S),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def check_gateway(http: aiohttp.ClientSession, url: str) -> None:
    """Ask `GET /healthz` once; raise `GatewayUnreachable` with a one-line reason."""
    try:
        async with http.get("healthz") as response:
            await response.read()
    except TRANSPORT_ERRORS as error:
        raise GatewayUnreachable(
            f"cannot reach the gateway at {url}: {describe_transport_error(error)} "
            "(is `iras serve` running? give its address with --url or IRAS_URL)"
        ) from None
    if response.status != 200:
        raise GatewayUnreachable(
            f"{url} does not look like an IRAS gateway: GET /healthz answered {response.status}"
        )


async def classify_v1(http: aiohttp.ClientSession, name: str, blob: bytes) -> Answer:
    """`POST /v1/classify?wait=true` with one file; the result is in the job's answer."""
    try:
        status, text = await _post_file(http, "v1/classify?wait=true", "files", name, blob)
    except TRANSPORT_ERRORS as error:
        return Answer(name, error=describe_transport_error(error))
    if status != 200:
        return Answer(name, error=http_error_text(status, text), status=status)
    try:
        request = json.loads(text)["requests"][0]
        return answer_from_result(name, request["result"], request.get("request_id"))
    except (ValueError, KeyError, IndexError, TypeError):
        return Answer(name, error=f"unexpected answer: {text[:200]!r}")


async def upload_course(http: aiohttp.ClientSession, name: str, blob: bytes) -> Answer:
    """`POST /upload` with field `myfile`; the answer is the text `<stem>:<label>`."""
    try:
        status, text = await _post_file(http, "upload", "myfile", name, blob)
    except TRANSPORT_ERRORS as error:
        return Answer(name, error=describe_transport_error(error))
    if status != 200:
        return Answer(name, error=http_error_text(status, text), status=status)
    return Answer(name, label=label_from_course_answer(name, text))


async def _post_file(
    http: aiohttp.ClientSession, path: str, field_name: str, name: str, blob: bytes
) -> tuple[int, str]:
    """POST one file as multipart form data; the status and the whole body as text."""
    form = aiohttp.FormData()
    form.add_field(field_name, blob, filename=name)
    async with http.post(path, data=form) as response:
        body = await response.read()
    return response.status, body.decode("utf-8", errors="replace")


def answer_from_result(name: str, result: dict[str, Any], request_id: str | None) -> Answer:
    """An `Answer` from the contract's result JSON (`label` and `top`, or `error`)."""
    worker = result.get("worker")
    timings = result.get("timings")
    timings = timings if isinstance(timings, dict) else None
    if "error" in result:
        return Answer(
            name, error=str(result["error"]), request_id=request_id, worker=worker, timings=timings
        )
    top = tuple((str(t["label"]), float(t["score"])) for t in result.get("top", []))
    return Answer(
        name,
        label=str(result["label"]),
        score=top[0][1] if top else None,
        top=top,
        request_id=request_id,
        worker=worker,
        timings=timings,
    )


def label_from_course_answer(name: str, text: str) -> str:
    """The label of a `name:label` answer (the gateway may have cleaned the name)."""
    prefix = f"{name_stem(name)}:"
    if text.startswith(prefix):
        return text[len(prefix) :]
    return text.partition(":")[2] or text


def http_error_text(status: int, text: str) -> str:
    """The gateway's `detail` (and `error` code) of a refused request, or its raw text."""
    try:
        body = json.loads(text)
        return f"{body['detail']} (HTTP {status} {body['error']})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}: {text[:200]!r}"


def describe_transport_error(error: BaseException) -> str:
    """A short phrase for a failure below HTTP: refused connection, timeout, cut answer."""
    if isinstance(error, TimeoutError):
        return f"no answer in time ({type(error).__name__})"
    reason = str(error) or type(error).__name__
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"connection failed: {reason}"
    return f"{type(error).__name__}: {reason}"
