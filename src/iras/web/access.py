"""Who is calling, and whether they may: API keys and per-client limits as dependencies.

Routes declare what they are: `CallerDep` for API calls (a valid key when keys are on,
and the client's request rate), `UploaderDep` for uploads (the same, and one of the
client's upload slots for as long as the request lasts, waiting included). The health,
readiness and metrics endpoints and the page's static files take neither: a load
balancer and a browser asking for the page have no key (`/readyz?deep=1`, which costs a
classification, admits itself like an API call).

A key is looked for in the headers (and a WebSocket's subprotocols), never in the URL;
an address that has presented too many wrong keys is refused before its key is checked
(`iras.web.key_failures`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketState

from iras.config import Settings
from iras.web.api_keys import ApiKeys, Unauthorized, accepted_subprotocol, presented_key
from iras.web.client_limits import ClientLimits, Refusal
from iras.web.errors import ApiError
from iras.web.key_failures import KeyFailures

#: WebSocket close codes (4000-4999 are the application's): a missing or wrong key, and a
#: client over its request rate (or an address locked out for wrong keys).
CLOSE_UNAUTHORIZED = 4401
CLOSE_RATE_LIMITED = 4429


@dataclass
class Access:
    keys: ApiKeys
    limits: ClientLimits
    key_failures: KeyFailures = field(default_factory=lambda: KeyFailures(0))
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
            KeyFailures(settings.max_key_failures_per_min),
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
    address = connection.client.host if connection.client else "unknown"
    caller = _authenticate(access, connection, address)
    client = caller or address
    refusal: Refusal | None = access.limits.admit(client, access.clock(), upload=upload)
    if refusal is not None:
        raise Denied(429, refusal.code, refusal.detail, {"Retry-After": str(refusal.retry_after_s)})
    connection.state.client = client
    return caller, client


def _authenticate(access: Access, connection: HTTPConnection, address: str) -> str | None:
    if not access.keys.required:
        return None
    subprotocols: Sequence[str] = connection.scope.get("subprotocols", ())
    presented = presented_key(connection.headers, subprotocols)
    now_s = access.clock()
    if presented:
        locked_s = access.key_failures.locked_for_s(address, now_s)
        if locked_s is not None:
            raise Denied(
                429,
                "too_many_wrong_keys",
                f"this address presented more than {access.key_failures.per_min} wrong API "
                "keys in a minute (IRAS_MAX_KEY_FAILURES_PER_MIN): no key from it is checked "
                f"for {locked_s} s",
                {"Retry-After": str(locked_s)},
            )
    try:
        return access.keys.authenticate(presented)
    except Unauthorized as error:
        if presented:
            access.key_failures.failed(address, now_s)
        raise Denied(401, "unauthorized", str(error), {"WWW-Authenticate": "Bearer"}) from None


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
    """Accept the WebSocket (with the `iras` subprotocol when offered, never the key's),
    and return its caller; refused ones get the error as a message and a 44xx close, as
    a browser cannot read a refused handshake's status."""
    if websocket.client_state is WebSocketState.CONNECTING:
        await websocket.accept(subprotocol=accepted_subprotocol(websocket.scope["subprotocols"]))
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


def charge_calls(connection: HTTPConnection, calls: int) -> None:
    """Charge the client of an admitted call one token per AWS call made on its behalf
    (a lookup answered from the output bucket): a client's polls cost it what they cost
    S3, so no client can make the gateway call S3 faster than its rate."""
    access: Access = connection.app.state.access
    access.limits.charge(client_of(connection), access.clock(), calls)
