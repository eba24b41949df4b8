"""`GET /v1/models`: the models the fleet serves (name, version, labels count, input)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from iras.web.access import api_caller
from iras.web.caller_lookups import LOOKUP_UNAVAILABLE, lookup_models
from iras.web.deps import GatewayDep
from iras.web.fleet_models import MODELS_CACHE_S, gateway_model, listing
from iras.web.schemas import API_CALL_ERRORS, ModelList, error_responses, json_answer

router = APIRouter(prefix="/v1", tags=["models"])


@router.get(
    "/models",
    summary="The models the fleet serves",
    dependencies=[Depends(api_caller)],
    response_model=ModelList,
    response_description=(
        "Every model version a worker recorded when it started (read from the state bucket "
        f"at most every {MODELS_CACHE_S:g} s), and the gateway's own IRAS_MODEL when it is "
        "a built-in model."
    ),
    responses=error_responses({**API_CALL_ERRORS, 503: LOOKUP_UNAVAILABLE}),
)
async def list_models(request: Request, gateway: GatewayDep) -> JSONResponse:
    records = await lookup_models(request, gateway)
    return json_answer(listing(records, gateway_model(gateway.settings)))
