"""`GET /v1/jobs/{job_id}` and `WS /v1/jobs/{job_id}/ws`: a job's progress, polled or streamed.

The socket sends one JSON message per result, starting with those that arrived before it
connected, and closes normally once the job is complete; a client that reconnects gets
the whole job again and de-duplicates by `request_id`. A job the gateway has forgotten
(or that another gateway ran) is served from the output bucket, polled until complete:
through the gateway's cached lookups (`iras.web.caller_lookups`, each S3 call charged to
the socket's client), every second while results come in and less often while none do
(`next_poll_s`, up to every `STORAGE_POLL_MAX_S`).

Every socket ends: when the job is complete, when the client goes (noticed at once, so a
job in the bucket is not polled for nobody), or after `IRAS_WEBSOCKET_TIMEOUT_S`. A
message without a `request_id` says why a socket ends early, as `{"error", "detail"}`.
Its close codes (4000-4999 are the application's own):

- 1000: the job is complete, every result sent.
- 4401, 4429 (`unauthorized`, `rate_limited`): refused at admission (`iras.web.access`).
- 4404 (`not_found`): no such job, or another API key's.
- 4408 (`timeout`): the job was not complete within `IRAS_WEBSOCKET_TIMEOUT_S`; reconnect
  (it replays the job) or look it up with GET.
- 4429 (`too_many_websockets`): the client already holds `IRAS_MAX_WEBSOCKETS_PER_CLIENT`.
- 4503 (`gateway_busy`): the gateway holds `IRAS_MAX_WEBSOCKETS` sockets in all.
- 1013 (`aws_unavailable`, WebSocket's own "try again later"): the output bucket failed
  a lookup, or did not answer within `IRAS_AWS_DEADLINE_S`; reconnect shortly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketState

from iras.web import schemas
from iras.web.access import CallerDep, Denied, client_of, websocket_caller
from iras.web.api_keys import may_see
from iras.web.caller_lookups import LOOKUP_UNAVAILABLE, lookup_job
from iras.web.deps import GatewayDep
from iras.web.errors import ApiError
from iras.web.gateway import Gateway
from iras.web.jobs import Job, ResultJson
from iras.web.lookup import job_json

router = APIRouter(prefix="/v1", tags=["jobs"])

#: WebSocket close codes (see above): an unknown job, and a job not complete in time.
CLOSE_UNKNOWN_JOB = 4404
CLOSE_TIMEOUT = 4408
#: The output bucket failed a lookup: WebSocket's "try again later".
CLOSE_TRY_AGAIN = 1013
#: How often a job known only from the output bucket is looked at again: at first and
#: while results come in, and at most, while none do (a job whose worker is down).
STORAGE_POLL_S = 1.0
STORAGE_POLL_MAX_S = 8.0


@router.get(
    "/jobs/{job_id}",
    summary="A job's requests and the results so far",
    response_model=schemas.Job,
    response_description="The job, with the results that have come in.",
    responses=schemas.error_responses(
        {
            **schemas.API_CALL_ERRORS,
            404: "`not_found`: no such job (or another API key's).",
            503: LOOKUP_UNAVAILABLE,
        }
    ),
)
async def get_job(
    job_id: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    job = await lookup_job(request, gateway, job_id, caller=caller)  # cached, charged to the caller
    if job is None or not may_see(job.owner, caller):  # another key's job: unknown
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    return schemas.json_answer(job_json(job))


@router.websocket("/jobs/{job_id}/ws")
async def job_results(websocket: WebSocket, job_id: str, gateway: GatewayDep) -> None:
    try:
        caller = await websocket_caller(websocket)  # accepts it (subprotocol `iras`), then admits
    except Denied:
        return
    client = client_of(websocket)
    refusal = gateway.sockets.take(client)  # before the lookup, which may cost S3 calls
    if refusal is not None:
        await _end(websocket, refusal.close_code, refusal.code, refusal.detail)
        return
    try:
        await _follow(websocket, gateway, job_id, caller)
    finally:
        gateway.sockets.give_back(client)


async def _follow(websocket: WebSocket, gateway: Gateway, job_id: str, caller: str | None) -> None:
    try:
        job = await lookup_job(websocket, gateway, job_id, caller=caller)
    except ApiError as failed:  # the output bucket failed the lookup
        await _end(websocket, CLOSE_TRY_AGAIN, failed.code, failed.detail)
        return
    if job is None:  # none, or another key's (lookup_job tells neither apart)
        await _end(websocket, CLOSE_UNKNOWN_JOB, "not_found", f"no job {job_id!r}")
        return
    timeout_s = gateway.settings.websocket_timeout_s
    deadline = asyncio.timeout(timeout_s)
    gateway.metrics.websockets.inc()
    try:
        async with deadline:
            if gateway.book.job(job_id) is job:
                await _stream_live(websocket, gateway, job)
            else:
                await _stream_stored(websocket, gateway, job, caller)
    except TimeoutError:
        if not deadline.expired():
            raise
        detail = (
            f"job {job_id!r} is not complete after {timeout_s:g} s (IRAS_WEBSOCKET_TIMEOUT_S): "
            f"reconnect to follow it on (the socket replays the job), or GET /v1/jobs/{job_id}"
        )
        await _end(websocket, CLOSE_TIMEOUT, "timeout", detail)
        return
    except ApiError as failed:  # a later look at the output bucket failed
        await _end(websocket, CLOSE_TRY_AGAIN, failed.code, failed.detail)
        return
    except WebSocketDisconnect:
        return
    finally:
        gateway.metrics.websockets.dec()
    if websocket.client_state is WebSocketState.CONNECTED:
        await websocket.close(1000, "job complete")


async def _stream_live(websocket: WebSocket, gateway: Gateway, job: Job) -> None:
    queue = gateway.book.subscribe(job)  # a subscribed job is never evicted from the book
    try:
        async with _watching_for_disconnect(websocket) as disconnected:
            for _ in range(len(job.requests)):
                result = await _next_unless_gone(queue, disconnected)
                if result is None:
                    return
                await websocket.send_json(result)
    finally:
        gateway.book.unsubscribe(job, queue)


async def _stream_stored(
    websocket: WebSocket, gateway: Gateway, job: Job, caller: str | None
) -> None:
    """Send `job`'s results, then look again for more until it is complete; the looks go
    through the cached lookups, so sockets on one job share their S3 calls."""
    job_id = job.job_id
    sent: set[str] = set()
    wait_s = STORAGE_POLL_S / 2  # doubled at the first look that finds nothing new
    async with _watching_for_disconnect(websocket) as disconnected:
        while True:
            fresh = [(rid, result) for rid, result in job.results.items() if rid not in sent]
            for request_id, result in fresh:
                await websocket.send_json(result)
                sent.add(request_id)
            if job.done:
                return
            wait_s = next_poll_s(wait_s, got_results=bool(fresh))
            await asyncio.wait({disconnected}, timeout=wait_s)
            if disconnected.done():  # nobody to poll for
                return
            looked = await lookup_job(websocket, gateway, job_id, caller=caller)
            if looked is None:  # its manifest is gone from the bucket since
                await _end(websocket, CLOSE_UNKNOWN_JOB, "not_found", f"no job {job_id!r}")
                return
            job = looked


def next_poll_s(previous_s: float, *, got_results: bool) -> float:
    """The wait before the next look at a stored job: `STORAGE_POLL_S` after a look that
    found results, twice the last wait (up to `STORAGE_POLL_MAX_S`) after one that found
    none: a stalled job costs S3 a look every 8 s, not every second, for as long as its
    socket lasts."""
    if got_results:
        return STORAGE_POLL_S
    return min(previous_s * 2, STORAGE_POLL_MAX_S)


async def _next_unless_gone(
    queue: asyncio.Queue[ResultJson], disconnected: asyncio.Task[None]
) -> ResultJson | None:
    """The queue's next result, or None once the client has gone."""
    getting = asyncio.ensure_future(queue.get())
    try:
        await asyncio.wait({getting, disconnected}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not getting.done():  # gone, or the deadline: no result is taken and lost
            getting.cancel()
    return getting.result() if getting.done() and not getting.cancelled() else None


@contextlib.asynccontextmanager
async def _watching_for_disconnect(websocket: WebSocket) -> AsyncIterator[asyncio.Task[None]]:
    """A task that ends when the client goes, for as long as the block runs."""
    disconnected = asyncio.create_task(_wait_disconnect(websocket))
    try:
        yield disconnected
    finally:
        disconnected.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await disconnected


async def _wait_disconnect(websocket: WebSocket) -> None:
    """Return when the client goes away (clients send nothing we need)."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


async def _end(websocket: WebSocket, code: int, error: str, detail: str) -> None:
    """Say why the socket ends, as a message (a browser sees no handshake status and no
    close reason it can rely on), then close with `code`; a client already gone is fine."""
    message: dict[str, Any] = {"error": error, "detail": detail}
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_json(message)
        await websocket.close(code, error)
