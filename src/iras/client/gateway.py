"""Send one image to a gateway and turn whatever happens into an `Answer`.

Two protocols: `POST /v1/classify?wait=true` (field `files`, JSON with the result) and
the course's `POST /upload` (field `myfile`, plain text `name:label`). A 4xx/5xx answer,
a timeout or a dropped connection becomes an `Answer` with an `error` that says what
happened, so one bad image never stops a run. Only `check_gateway`, asked once before a
run, raises: a gateway that cannot be reached at all is the caller's problem to report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from iras.messages import name_stem


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

    @property
    def ok(self) -> bool:
        return self.error is None


#: Sends (client, file name, image bytes) and answers.
Send = Callable[[httpx.AsyncClient, str, bytes], Awaitable[Answer]]


class GatewayUnreachable(Exception):
    """The gateway did not answer, or what answered is not an IRAS gateway."""


async def check_gateway(http: httpx.AsyncClient) -> None:
    """Ask `GET /healthz` once; raise `GatewayUnreachable` with a one-line reason."""
    try:
        response = await http.get("/healthz")
    except httpx.TransportError as error:
        raise GatewayUnreachable(
            f"cannot reach the gateway at {http.base_url}: {describe_transport_error(error)} "
            "(is `iras serve` running? give its address with --url or IRAS_URL)"
        ) from None
    if response.status_code != 200:
        raise GatewayUnreachable(
            f"{http.base_url} does not look like an IRAS gateway: "
            f"GET /healthz answered {response.status_code}"
        )


async def classify_v1(http: httpx.AsyncClient, name: str, blob: bytes) -> Answer:
    """`POST /v1/classify?wait=true` with one file; the result is in the job's answer."""
    try:
        response = await http.post(
            "/v1/classify", params={"wait": "true"}, files={"files": (name, blob)}
        )
    except httpx.TransportError as error:
        return Answer(name, error=describe_transport_error(error))
    if response.status_code != 200:
        return Answer(name, error=http_error_text(response), status=response.status_code)
    try:
        request = response.json()["requests"][0]
        return answer_from_result(name, request["result"], request.get("request_id"))
    except (ValueError, KeyError, IndexError, TypeError):
        return Answer(name, error=f"unexpected answer: {response.text[:200]!r}")


async def upload_course(http: httpx.AsyncClient, name: str, blob: bytes) -> Answer:
    """`POST /upload` with field `myfile`; the answer is the text `<stem>:<label>`."""
    try:
        response = await http.post("/upload", files={"myfile": (name, blob)})
    except httpx.TransportError as error:
        return Answer(name, error=describe_transport_error(error))
    if response.status_code != 200:
        return Answer(name, error=http_error_text(response), status=response.status_code)
    return Answer(name, label=label_from_course_answer(name, response.text))


def answer_from_result(name: str, result: dict[str, Any], request_id: str | None) -> Answer:
    """An `Answer` from the contract's result JSON (`label` and `top`, or `error`)."""
    worker = result.get("worker")
    if "error" in result:
        return Answer(name, error=str(result["error"]), request_id=request_id, worker=worker)
    top = tuple((str(t["label"]), float(t["score"])) for t in result.get("top", []))
    return Answer(
        name,
        label=str(result["label"]),
        score=top[0][1] if top else None,
        top=top,
        request_id=request_id,
        worker=worker,
    )


def label_from_course_answer(name: str, text: str) -> str:
    """The label of a `name:label` answer (the gateway may have cleaned the name)."""
    prefix = f"{name_stem(name)}:"
    if text.startswith(prefix):
        return text[len(prefix) :]
    return text.partition(":")[2] or text


def http_error_text(response: httpx.Response) -> str:
    """The gateway's `detail` (and `error` code) of a refused request, or its raw text."""
    try:
        body = response.json()
        return f"{body['detail']} (HTTP {response.status_code} {body['error']})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]!r}"


def describe_transport_error(error: httpx.TransportError) -> str:
    """A short phrase for a failure below HTTP: refused connection, timeout, cut answer."""
    if isinstance(error, httpx.TimeoutException):
        return f"no answer in time ({type(error).__name__})"
    reason = str(error) or type(error).__name__
    if isinstance(error, httpx.ConnectError):
        return f"connection failed: {reason}"
    return f"{type(error).__name__}: {reason}"
