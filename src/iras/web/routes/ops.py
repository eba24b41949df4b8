"""Operations: liveness, readiness (and its deep check), Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from iras.web.access import api_caller
from iras.web.deps import GatewayDep
from iras.web.errors import ApiError
from iras.web.golden import MAX_WAIT_S
from iras.web.readiness import NotReady
from iras.web.schemas import (
    API_CALL_ERRORS,
    Health,
    Readiness,
    ScalerSnapshot,
    error_responses,
    json_answer,
)

router = APIRouter(tags=["operations"])

#: The longest a deep readiness check may be asked to wait (`?timeout_s=`).
MAX_DEEP_TIMEOUT_S = MAX_WAIT_S


_NOT_READY = "`not_ready`: still connecting to AWS; the detail says what is missing."

_READYZ_ERRORS = {
    401: f"Only with `deep=1`: {API_CALL_ERRORS[401]}",
    422: "`invalid_request`: `deep` is not a boolean, or `timeout_s` is not a number in "
    f"(0, {MAX_DEEP_TIMEOUT_S:g}].",
    429: f"Only with `deep=1`: {API_CALL_ERRORS[429]}",
    503: "Not ready, said the check (answers are reused for a second): `not_ready` (still "
    "connecting to AWS, or the reply listener has stopped or its receives do not come "
    "back) or `aws_unavailable` (the request queue or the output bucket did not answer "
    "within IRAS_AWS_DEADLINE_S, or refused). With `deep=1` also `golden_image_timeout` "
    "(no result within `timeout_s`) or `golden_image_failed` (the worker answered with an "
    "error).",
}


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
    summary="The gateway can store, queue and receive replies; `deep=1`: and the fleet answers",
    response_model=Readiness,
    response_description="Ready; with `deep=1`, the golden image's trip in `deep`.",
    responses=error_responses(_READYZ_ERRORS),
)
async def readyz(
    request: Request,
    gateway: GatewayDep,
    deep: bool = Query(
        False,
        description="Also classify a small golden image end to end through the fleet and "
        "report its time, label and worker (an API call: a key when IRAS_API_KEYS is set, "
        "and the client's rate). Concurrent deep checks share one golden image.",
    ),
    timeout_s: float | None = Query(
        None,
        gt=0,
        le=MAX_DEEP_TIMEOUT_S,
        description="With `deep=1`: how long to wait for the golden image's result "
        "(default IRAS_DEEP_READINESS_TIMEOUT_S).",
    ),
) -> JSONResponse:
    if deep:
        await api_caller(request)
    ready = await gateway.readiness.answer()
    if isinstance(ready, NotReady):
        raise ready.as_api_error()
    if not deep:
        return json_answer(ready)
    trip = await gateway.golden.run(timeout_s or gateway.settings.deep_readiness_timeout_s)
    if isinstance(trip, NotReady):
        raise trip.as_api_error()
    return json_answer({**ready, "deep": trip})


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
