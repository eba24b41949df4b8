"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from iras.aws.errors import AWS_ERRORS
from iras.aws.queues import queue_depth
from iras.web.access import api_caller
from iras.web.deps import GatewayDep
from iras.web.errors import ApiError

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="AWS is reachable, the queues exist, work can be accepted")
async def readyz(gateway: GatewayDep) -> dict[str, Any]:
    if not gateway.ready.is_set() or gateway.request_queue_url is None:
        raise ApiError(503, "not_ready", gateway.not_ready_reason, {"Retry-After": "2"})
    try:
        async with asyncio.timeout(gateway.settings.aws_deadline_s):
            visible, in_flight = await queue_depth(gateway.aws.sqs, gateway.request_queue_url)
    except AWS_ERRORS as error:
        raise ApiError(
            503,
            "aws_unavailable",
            f"the request queue did not answer: {error or 'timed out'}",
            {"Retry-After": "2"},
        ) from None
    return {
        "status": "ready",
        "gateway": gateway.id,
        "reply_queue": gateway.reply_queue_url,
        "backlog": visible,
        "in_flight": in_flight,
    }


@router.get(
    "/v1/scaler",
    summary="The autoscaler: fleet size, backlog, and their recent timeline",
    dependencies=[Depends(api_caller)],
)
async def scaler(gateway: GatewayDep) -> dict[str, Any]:
    if not gateway.settings.autoscaler:
        raise ApiError(404, "not_found", "the autoscaler is off here (IRAS_AUTOSCALER=false)")
    if gateway.scaler is None:
        raise ApiError(503, "not_ready", gateway.not_ready_reason, {"Retry-After": "2"})
    return gateway.scaler.snapshot()


@router.get("/metrics", summary="Prometheus metrics (text format)")
async def metrics(gateway: GatewayDep) -> Response:
    if gateway.scaler is not None:
        gateway.metrics.observe_scaler(gateway.scaler.snapshot(with_timeline=False))
    return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)
