"""How big a request body may be, route by route, enforced while it streams.

The limit is an ASGI middleware so that it applies before any parser buffers anything: a
declared Content-Length over the limit is refused at once, and a body that streams past
it is cut off at the byte where it does. Each upload route gets the limit its form
needs: a course route (`POST /upload`, `POST /`: IRAS_COURSE_ROUTES) carries one image,
so IRAS_MAX_UPLOAD_BYTES and a form's room around it; `POST /v1/classify` carries up to
IRAS_MAX_FILES_PER_REQUEST of them, within IRAS_MAX_REQUEST_BYTES. A course client cannot make the gateway read 80 MB to refuse one
oversized file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iras.config import Settings

#: Before a 413, the most a client may still send (and for how long) before it is cut off.
DRAIN_LIMIT_BYTES = 1_000_000
DRAIN_LIMIT_S = 1.0

#: What a multipart form needs around each file besides its bytes: the boundary lines and
#: the part's headers (its field and file name); generous, since a name can be long.
FORM_ROOM_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """The largest body a route takes, and what its 413 tells the client."""

    max_bytes: int
    advice: str


def body_limits(settings: Settings) -> tuple[BodyLimit, dict[str, BodyLimit]]:
    """The limit of any route, and those of the upload routes, by path."""
    per_file = settings.max_upload_bytes + FORM_ROOM_BYTES
    default = BodyLimit(
        settings.max_request_bytes,
        "(IRAS_MAX_REQUEST_BYTES); send fewer or smaller images per request",
    )
    course = {
        path: BodyLimit(
            per_file,
            f"(POST {path} takes one image of at most IRAS_MAX_UPLOAD_BYTES = "
            f"{settings.max_upload_bytes:,} bytes); send a smaller image",
        )
        if per_file < settings.max_request_bytes
        else default
        for path, _ in settings.course_route_fields
    }
    many = settings.max_files_per_request * per_file
    if many < settings.max_request_bytes:
        classify = BodyLimit(
            many,
            f"(IRAS_MAX_FILES_PER_REQUEST = {settings.max_files_per_request} images of at "
            f"most IRAS_MAX_UPLOAD_BYTES = {settings.max_upload_bytes:,} bytes each); send "
            "fewer or smaller images per request",
        )
    else:
        classify = default
    return default, {**course, "/v1/classify": classify}


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Answer 413 to any request whose body is larger than its route's limit."""

    def __init__(
        self, app: ASGIApp, default: BodyLimit, by_path: Mapping[str, BodyLimit] | None = None
    ) -> None:
        self.app = app
        self.default = default
        self.by_path = dict(by_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.by_path.get(scope["path"], self.default)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit.max_bytes:
            await drain(receive)
            await _refuse(send, limit)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit.max_bytes:
                    raise _BodyTooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except _BodyTooLarge:
            if not started:
                await drain(receive)
                await _refuse(send, limit)


async def _refuse(send: Send, limit: BodyLimit) -> None:
    body = json.dumps(
        {
            "error": "request_too_large",
            "detail": f"the request body is over {limit.max_bytes:,} bytes {limit.advice}",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def drain(
    receive: Receive, max_bytes: int = DRAIN_LIMIT_BYTES, max_s: float = DRAIN_LIMIT_S
) -> None:
    """Read and drop what the client still sends before it is refused, up to a bound.

    A refusal closes the connection, and closing one with unread bytes in it makes the
    kernel reset it: the reset can destroy the answer before the client has read it. A
    client sending far more than `max_bytes`, or for longer than `max_s`, is cut off
    regardless.
    """
    seen = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max_s):
            while seen < max_bytes:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
                seen += len(message.get("body", b""))
