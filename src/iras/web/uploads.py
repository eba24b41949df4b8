"""Reading uploads: a body-size limit enforced while streaming, and multipart form checks.

The limit is an ASGI middleware so that it applies before any parser buffers anything:
a declared Content-Length over the limit is refused at once, and a body that streams
past it is cut off at the byte where it does. Form parsing then checks the fields a
route expects: which ones (any other is refused as soon as its headers are read), how
many files, how big each is. A client that leaves mid-upload is logged in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iras.web.errors import ApiError
from iras.web.validation import ImageInfo, clean_name, inspect_image

log = logging.getLogger(__name__)

#: Before a 413, the most a client may still send (and for how long) before it is cut off.
DRAIN_LIMIT_BYTES = 1_000_000
DRAIN_LIMIT_S = 1.0


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Answer 413 to any request whose body is larger than `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _drain(receive)
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
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
                await _drain(receive)
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "error": "request_too_large",
                "detail": f"the request body is over {self.max_bytes:,} bytes "
                "(IRAS_MAX_REQUEST_BYTES); send fewer or smaller images per request",
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


async def _drain(receive: Receive) -> None:
    """Read and drop what the client still sends before it is answered 413, up to a bound.

    The 413 closes the connection, and closing one with unread bytes in it makes the
    kernel reset it: the reset can destroy the 413 before the client has read it. A
    client sending far more than `DRAIN_LIMIT_BYTES` is cut off regardless.
    """
    seen = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_LIMIT_S):
            while seen < DRAIN_LIMIT_BYTES:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
                seen += len(message.get("body", b""))


@dataclass(frozen=True, slots=True)
class ImageFile:
    """An uploaded image that passed every check."""

    name: str
    blob: bytes
    info: ImageInfo


async def read_images(
    request: Request,
    field: str,
    *,
    max_files: int,
    max_file_bytes: int,
    max_pixels: int,
) -> list[ImageFile]:
    """The images in multipart field `field`, each checked; raise `ApiError`/`UploadRejected`."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            415,
            "multipart_expected",
            f"send the image(s) as multipart/form-data in the field {field!r} "
            f"(got Content-Type {content_type or 'none'!r})",
        )
    parser = _OneFieldParser(
        field, request.headers, request.stream(), max_files=max_files, max_fields=max_files + 16
    )
    try:
        form = await parser.parse()
    except ClientDisconnect:
        raise _abandoned(request) from None
    except (HTTPException, MultiPartException) as error:  # the parser's limits and syntax
        detail = getattr(error, "detail", None) or getattr(error, "message", str(error))
        raise ApiError(400, "invalid_form", f"cannot read the form: {detail}") from None
    try:
        entries = form.getlist(field)
        files = [entry for entry in entries if isinstance(entry, UploadFile)]
        if not files:  # any other field was refused while parsing
            raise ApiError(400, "missing_file", f"no file in the form field {field!r}")
        if len(files) != len(entries):
            raise ApiError(400, "not_a_file", f"the field {field!r} must carry files, not text")
        return [await _check_file(upload, max_file_bytes, max_pixels) for upload in files]
    finally:
        await form.close()


def _abandoned(request: Request) -> ApiError:
    """The answer nobody will read to an upload whose client left before its body ended.

    Routine (a closed tab, a killed script, a dropped network), so one log line and not
    Starlette's traceback; answered with nginx's 499 "client closed request" so that the
    request and rejection counters show it, and nothing is stored or queued.
    """
    client = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
    log.warning(
        "upload to %s abandoned: client %s closed the connection before its body ended; "
        "nothing accepted",
        request.url.path,
        client,
    )
    return ApiError(
        499, "client_disconnected", "the client closed the connection before the body ended"
    )


class _OneFieldParser(MultiPartParser):
    """Starlette's multipart parser, refusing any part not named `field` when its headers end.

    Refused while streaming, before the part's data is spooled, and before the parser's
    own file count would call an extra file "too many files": a client that misnames the
    field or adds one learns which field it sent and which one is read.
    """

    def __init__(
        self,
        field: str,
        headers: Headers,
        stream: AsyncGenerator[bytes, None],
        *,
        max_files: int,
        max_fields: int,
    ) -> None:
        super().__init__(headers, stream, max_files=max_files, max_fields=max_fields)
        self.field = field

    def on_headers_finished(self) -> None:
        try:
            super().on_headers_finished()
        except MultiPartException:
            self._refuse_unexpected()  # the clearer reason first
            raise
        self._refuse_unexpected()

    def _refuse_unexpected(self) -> None:
        name = self._current_part.field_name  # set before the parser checks its limits
        if name and name != self.field:
            disposition = self._current_part.content_disposition or b""
            kind = "file" if b"filename=" in disposition else "text"
            raise ApiError(
                400,
                "unexpected_field",
                f"the form has a {kind} field {name!r} this endpoint does not read; "
                f"the only field accepted is {self.field!r} (the image file(s))",
            )


async def _check_file(upload: UploadFile, max_file_bytes: int, max_pixels: int) -> ImageFile:
    name = clean_name(upload.filename)
    if upload.size is not None and upload.size > max_file_bytes:
        raise ApiError(
            413,
            "file_too_large",
            f"{name!r} is {upload.size:,} bytes; the limit is {max_file_bytes:,} bytes "
            "(IRAS_MAX_UPLOAD_BYTES)",
        )
    blob = await upload.read()
    info = inspect_image(blob, name, max_pixels)
    return ImageFile(name=name, blob=blob, info=info)
