"""`GET /v1/jobs/{job_id}` and `WS /v1/jobs/{job_id}/ws`: a job's progress, polled or streamed.

The socket sends one JSON message per result, starting with those that arrived before it
connected, and closes normally once the job is complete; a client that reconnects gets
the whole job again and de-duplicates by `request_id`. A job the gateway has forgotten
(or that another gateway ran) is served from the output bucket, polled until complete.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketState

from iras.web import schemas
from iras.web.access import CallerDep, Denied, websocket_caller
from iras.web.api_keys import may_see
from iras.web.deps import GatewayDep
from iras.web.errors import ApiError
from iras.web.gateway import Gateway
from iras.web.jobs import Job
from iras.web.lookup import find_job, job_json, refresh_from_storage

router = APIRouter(prefix="/v1", tags=["jobs"])

#: WebSocket close code for an unknown job (4000-4999 are the application's own).
CLOSE_UNKNOWN_JOB = 4404
#: How often a job known only from the output bucket is looked at again.
STORAGE_POLL_S = 1.0


@router.get(
    "/jobs/{job_id}",
    summary="A job's requests and the results so far",
    response_model=schemas.Job,
    response_description="The job, with the results that have come in.",
    responses=schemas.error_responses(
        {**schemas.API_CALL_ERRORS, 404: "`not_found`: no such job (or another API key's)."}
    ),
)
async def get_job(job_id: str, gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    job = await find_job(gateway.settings, gateway.aws, gateway.book, job_id)
    if job is None or not may_see(job.owner, caller):  # another key's job: unknown
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    return schemas.json_answer(job_json(job))


@router.websocket("/jobs/{job_id}/ws")
async def job_results(websocket: WebSocket, job_id: str, gateway: GatewayDep) -> None:
    await websocket.accept()
    try:
        caller = await websocket_caller(websocket)
    except Denied:
        return
    job = await find_job(gateway.settings, gateway.aws, gateway.book, job_id)
    if job is None or not may_see(job.owner, caller):
        await websocket.send_json({"error": "not_found", "detail": f"no job {job_id!r}"})
        await websocket.close(CLOSE_UNKNOWN_JOB, "unknown job")
        return
    gateway.metrics.websockets.inc()
    try:
        if gateway.book.job(job_id) is job:
            await _stream_live(websocket, gateway, job)
        else:
            await _stream_stored(websocket, gateway, job)
    except WebSocketDisconnect:
        return
    finally:
        gateway.metrics.websockets.dec()
    if websocket.client_state is WebSocketState.CONNECTED:
        await websocket.close(1000, "job complete")


async def _stream_live(websocket: WebSocket, gateway: Gateway, job: Job) -> None:
    queue = gateway.book.subscribe(job)
    disconnected = asyncio.create_task(_wait_disconnect(websocket))
    try:
        for _ in range(len(job.requests)):
            next_result = asyncio.create_task(queue.get())
            await asyncio.wait({next_result, disconnected}, return_when=asyncio.FIRST_COMPLETED)
            if not next_result.done():
                next_result.cancel()
                return
            await websocket.send_json(next_result.result())
    finally:
        gateway.book.unsubscribe(job, queue)
        disconnected.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await disconnected


async def _stream_stored(websocket: WebSocket, gateway: Gateway, job: Job) -> None:
    sent: set[str] = set()
    while True:
        for request_id, result in list(job.results.items()):
            if request_id not in sent:
                await websocket.send_json(result)
                sent.add(request_id)
        if job.done:
            return
        await asyncio.sleep(STORAGE_POLL_S)
        await refresh_from_storage(gateway.settings, gateway.aws, job)


async def _wait_disconnect(websocket: WebSocket) -> None:
    """Return when the client goes away (clients send nothing we need)."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
