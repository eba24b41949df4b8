"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from iras.aws.errors import AWS_ERRORS
from iras.web.access import api_caller
from iras.web.deps import GatewayDep
from iras.web.errors import ApiError
from iras.web.schemas import (
    API_CALL_ERRORS,
    Health,
    Readiness,
    ScalerSnapshot,
    error_responses,
    json_answer,
)

router = APIRouter(tags=["operations"])


_NOT_READY = "`not_ready`: still connecting to AWS; the detail says what is missing."


@router.get(
    "/healthz",
    summary="The process is alive",
    response_model=Health,
    responses=error_responses({}),
)
async def healthz() -> JSONResponse:
    return json_answer({"status": "ok"})


@router.get(
    "/readyz",
    summary="AWS is reachable, the queues exist, work can be accepted",
    response_model=Readiness,
    responses=error_responses(
        {503: f"{_NOT_READY} Or `aws_unavailable`: the request queue did not answer."}
    ),
)
async def readyz(gateway: GatewayDep) -> JSONResponse:
    if not gateway.ready.is_set() or gateway.request_queue_url is None:
        raise ApiError(503, "not_ready", gateway.not_ready_reason, {"Retry-After": "2"})
    try:
        async with asyncio.timeout(gateway.settings.aws_deadline_s):
            visible, in_flight = await gateway.aws.messages.depth(gateway.request_queue_url)
    except AWS_ERRORS as error:
        raise ApiError(
            503,
            "aws_unavailable",
            f"the request queue did not answer: {error or 'timed out'}",
            {"Retry-After": "2"},
        ) from None
    return json_answer(
        {
            "status": "ready",
            "gateway": gateway.id,
            "reply_queue": gateway.reply_queue_url,
            "backlog": visible,
            "in_flight": in_flight,
        }
    )


@router.get(
    "/v1/scaler",
    summary="The autoscaler: fleet size, backlog, and their recent timeline",
    dependencies=[Depends(api_caller)],
    response_model=ScalerSnapshot,
    responses=error_responses(
        {
            **API_CALL_ERRORS,
            404: "`not_found`: the autoscaler is off in this gateway (IRAS_AUTOSCALER=false).",
            503: _NOT_READY,
        }
    ),
)
async def scaler(gateway: GatewayDep) -> JSONResponse:
    if not gateway.settings.autoscaler:
        raise ApiError(404, "not_found", "the autoscaler is off here (IRAS_AUTOSCALER=false)")
    if gateway.scaler is None:
        raise ApiError(503, "not_ready", gateway.not_ready_reason, {"Retry-After": "2"})
    return json_answer(gateway.scaler.snapshot())


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format)",
    response_class=PlainTextResponse,
    response_description="The gateway's metrics in Prometheus' text exposition format.",
    responses=error_responses({}, text_route=True),
)
async def metrics(gateway: GatewayDep) -> Response:
    if gateway.scaler is not None:
        gateway.metrics.observe_scaler(gateway.scaler.snapshot(with_timeline=False))
    return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)
