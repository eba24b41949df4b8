"""Request-scoped access to the gateway, as `Annotated` dependencies.

They are `async def` although they await nothing: FastAPI runs a plain `def` dependency
in its thread pool, two thread hand-offs per upload for two attribute reads.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from iras.web.errors import ApiError
from iras.web.gateway import Gateway
from iras.web.submit import Submitter

#: Seconds a client is told to wait before retrying while the gateway is not ready.
RETRY_AFTER_S = 2


async def get_gateway(connection: HTTPConnection) -> Gateway:
    gateway: Gateway = connection.app.state.gateway
    return gateway


async def get_submitter(request: Request) -> Submitter:
    """The submitter, or 503 with Retry-After while the gateway is not connected yet."""
    gateway: Gateway = request.app.state.gateway
    if gateway.submitter is None:
        raise ApiError(
            503,
            "not_ready",
            f"the gateway is not ready yet ({gateway.not_ready_reason}); retry shortly",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    return gateway.submitter


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
SubmitterDep = Annotated[Submitter, Depends(get_submitter)]
