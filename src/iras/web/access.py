"""Who is calling, and whether they may: API keys and per-client limits as dependencies.

Routes declare what they are: `CallerDep` for API calls (a valid key when keys are on,
and the client's request rate), `UploaderDep` for uploads (the same, and one of the
client's upload slots for as long as the request lasts, waiting included). The health,
readiness and metrics endpoints and the page's static files take neither: a load
balancer and a browser asking for the page have no key.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from starlette.requests import HTTPConnection

from iras.config import Settings
from iras.web.api_keys import ApiKeys, Unauthorized, presented_key
from iras.web.client_limits import ClientLimits, Refusal
from iras.web.errors import ApiError

#: WebSocket close codes (4000-4999 are the application's): a missing or wrong key, and a
#: client over its request rate.
CLOSE_UNAUTHORIZED = 4401
CLOSE_RATE_LIMITED = 4429


@dataclass
class Access:
    keys: ApiKeys
    limits: ClientLimits
    clock: Callable[[], float] = field(default=time.monotonic)

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        return cls(
            ApiKeys(settings.api_keys),
            ClientLimits(
                settings.rate_limit_per_s,
                settings.rate_limit_burst,
                settings.max_uploads_per_client,
            ),
        )


class Denied(Exception):
    """A call refused before it reaches its route: the JSON error and its status."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str]) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers

    def as_api_error(self) -> ApiError:
        return ApiError(self.status, self.code, self.detail, self.headers)


def admit(connection: HTTPConnection, *, upload: bool) -> tuple[str | None, str]:
    """(caller, client) of an admitted call; raises `Denied` otherwise."""
    access: Access = connection.app.state.access
    try:
        caller = access.keys.authenticate(
            presented_key(connection.headers, connection.query_params)
        )
    except Unauthorized as error:
        raise Denied(401, "unauthorized", str(error), {"WWW-Authenticate": "Bearer"}) from None
    client = caller or (connection.client.host if connection.client else "unknown")
    refusal: Refusal | None = access.limits.admit(client, access.clock(), upload=upload)
    if refusal is not None:
        raise Denied(429, refusal.code, refusal.detail, {"Retry-After": str(refusal.retry_after_s)})
    connection.state.client = client
    return caller, client


def client_of(connection: HTTPConnection) -> str:
    """The client an admitted call was counted against (its key's digest, or its address):
    what per-client limits beyond the route's own admission key on."""
    client: str = connection.state.client
    return client


async def api_caller(request: Request) -> str | None:
    try:
        caller, _ = admit(request, upload=False)
    except Denied as denied:
        raise denied.as_api_error() from None
    return caller


async def upload_caller(request: Request) -> AsyncIterator[str | None]:
    try:
        caller, client = admit(request, upload=True)
    except Denied as denied:
        raise denied.as_api_error() from None
    try:
        yield caller
    finally:
        request.app.state.access.limits.finished(client)


async def websocket_caller(websocket: WebSocket) -> str | None:
    """The caller of an accepted WebSocket; refused ones get the error as a message and
    a 44xx close, as a browser cannot read a refused handshake's status."""
    try:
        caller, _ = admit(websocket, upload=False)
    except Denied as denied:
        await websocket.send_json({"error": denied.code, "detail": denied.detail})
        code = CLOSE_UNAUTHORIZED if denied.status == 401 else CLOSE_RATE_LIMITED
        await websocket.close(code, denied.code)
        raise
    return caller


CallerDep = Annotated[str | None, Depends(api_caller)]
UploaderDep = Annotated[str | None, Depends(upload_caller)]
