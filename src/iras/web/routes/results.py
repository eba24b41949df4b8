"""`GET /v1/results/{request_id}`: one result, from memory or the output bucket."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from iras.web.access import CallerDep
from iras.web.caller_lookups import LOOKUP_UNAVAILABLE, lookup_job, lookup_result
from iras.web.deps import GatewayDep
from iras.web.errors import ApiError
from iras.web.schemas import API_CALL_ERRORS, Result, error_responses, json_answer

router = APIRouter(prefix="/v1", tags=["results"])


@router.get(
    "/results/{request_id}",
    summary="The result of one request",
    response_model=Result,
    response_description="The result, as the worker wrote it to the output bucket.",
    responses=error_responses(
        {
            **API_CALL_ERRORS,
            404: "`not_found`: no such request, or not classified yet (or another API key's).",
            503: LOOKUP_UNAVAILABLE,
        }
    ),
)
async def get_result(
    request_id: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    result = await lookup_result(request, gateway, request_id)
    if result is not None and caller is not None:  # keys are on: is it the caller's?
        # Its owner is in its job's manifest: the job's results are not needed for that.
        job_id = str(result.get("job_id", ""))
        job = await lookup_job(request, gateway, job_id, caller=caller, with_results=False)
        if job is None:
            result = None  # another key's result is as unknown as a missing one
    if result is None:
        raise ApiError(
            404,
            "not_found",
            f"no result for request {request_id!r} (yet): it is unknown or still being classified",
        )
    return json_answer(result)
