"""Reading uploads: multipart form checks, within the gateway's budget of bytes in flight.

Form parsing checks the fields a route expects: which ones (any other is refused as soon
as its headers are read), how many files, how big each is. Before the body is read, the
request takes its share of the gateway's upload budget (`iras.web.upload_budget`) from
its Content-Length (a chunked body: chunk by chunk); when there is no room, it is
refused 503 with Retry-After. The share is given back once its images are stored and
queued (`ReceivedImages.close`), or as soon as it is refused or abandoned.

A file small enough for the parser to keep in memory (up to 1 MiB) is read as bytes;
a bigger one stays in the temporary file the parser spooled it to, checked from its ends
and header, and read only when stored. A client that leaves mid-upload is logged in one
line. How big a body may be at all is `iras.web.body_limits`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from iras.telemetry.tracing import TRACER
from iras.web.body_limits import drain
from iras.web.errors import ApiError
from iras.web.upload_budget import BUSY_RETRY_AFTER_S, UploadBudget, UploadHold
from iras.web.validation import ImageInfo, clean_name, inspect_image, inspect_image_file

log = logging.getLogger(__name__)

#: How long a refused upload's body is still read (and dropped) so that its client can
#: read the 503 (see `iras.web.body_limits.drain`): long enough for a whole body at the
#: request limit over a slow link; none of it is kept.
REFUSAL_DRAIN_S = 10.0


@dataclass(frozen=True, slots=True)
class ImageFile:
    """An uploaded image that passed every check: its bytes, or for one spooled to disk,
    the spooled file, read only when it is stored."""

    name: str
    content: bytes | UploadFile
    info: ImageInfo

    async def read(self) -> bytes:
        """The image's bytes (from its spooled file, off the event loop)."""
        if isinstance(self.content, bytes):
            return self.content
        await self.content.seek(0)
        return await self.content.read()


class ReceivedImages(list[ImageFile]):
    """The checked images of one request, holding their spooled files and the request's
    share of the upload budget until `close`, once they are stored (or refused)."""

    def __init__(self, images: list[ImageFile], form: FormData, hold: UploadHold) -> None:
        super().__init__(images)
        self._form = form
        self._hold = hold

    async def close(self) -> None:
        """Drop the images and their files, and give the request's bytes back to the budget."""
        self.clear()
        try:
            await self._form.close()
        finally:
            self._hold.release()


async def read_images(
    request: Request,
    field: str,
    *,
    max_files: int,
    max_file_bytes: int,
    max_pixels: int,
) -> ReceivedImages:
    """The images in multipart field `field`, each checked; raise `ApiError`/`UploadRejected`.

    The caller closes what it gets (`ReceivedImages.close`) once the images are stored.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            415,
            "multipart_expected",
            f"send the image(s) as multipart/form-data in the field {field!r} "
            f"(got Content-Type {content_type or 'none'!r})",
        )
    budget: UploadBudget = request.app.state.upload_budget
    hold = UploadHold(budget)
    try:
        declared = request.headers.get("content-length", "")
        stream = request.stream()
        if declared.isdigit():
            await _admit(request, hold, int(declared))
        else:  # chunked: charged as it streams in
            stream = _charged(request, hold, stream)
        with TRACER.start_as_current_span("iras.validate"):
            form = await _parse(request, field, stream, max_files)
            try:
                images = await _check_files(form, field, max_file_bytes, max_pixels)
            except BaseException:
                await form.close()
                raise
    except BaseException:
        hold.release()  # refused or abandoned: its bytes are free again
        raise
    return ReceivedImages(images, form, hold)


async def _admit(request: Request, hold: UploadHold, declared: int) -> None:
    if not await hold.take(declared):
        # A client that waits for "100 Continue" has sent nothing yet: it need not send.
        waiting = request.headers.get("expect", "").lower() == "100-continue"
        raise await _over_budget(request, hold, declared, body_sent=not waiting)


async def _charged(
    request: Request, hold: UploadHold, stream: AsyncGenerator[bytes, None]
) -> AsyncGenerator[bytes, None]:
    """`stream`, each chunk charged to `hold` before the parser sees it."""
    async for chunk in stream:
        if not await hold.take(len(chunk)):
            raise await _over_budget(request, hold, len(chunk), body_sent=True)
        yield chunk


async def _over_budget(
    request: Request, hold: UploadHold, more: int, *, body_sent: bool
) -> ApiError:
    """The 503 for an upload the budget has no room for, once the rest of its body has
    been read and dropped (within `REFUSAL_DRAIN_S`), so that its client reads it."""
    detail = hold.refusal_detail(more)
    hold.release()
    log.info("upload to %s refused: %s", request.url.path, detail)
    if body_sent:
        await drain(request.receive, max_bytes=2**62, max_s=REFUSAL_DRAIN_S)
    return ApiError(503, "upload_budget", detail, headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})


async def _parse(
    request: Request, field: str, stream: AsyncGenerator[bytes, None], max_files: int
) -> FormData:
    parser = _OneFieldParser(
        field, request.headers, stream, max_files=max_files, max_fields=max_files + 16
    )
    try:
        return await parser.parse()
    except ClientDisconnect:
        raise _abandoned(request) from None
    except (HTTPException, MultiPartException) as error:  # the parser's limits and syntax
        detail = getattr(error, "detail", None) or getattr(error, "message", str(error))
        raise ApiError(400, "invalid_form", f"cannot read the form: {detail}") from None


async def _check_files(
    form: FormData, field: str, max_file_bytes: int, max_pixels: int
) -> list[ImageFile]:
    entries = form.getlist(field)
    files = [entry for entry in entries if isinstance(entry, UploadFile)]
    if not files:  # any other field was refused while parsing
        raise ApiError(400, "missing_file", f"no file in the form field {field!r}")
    if len(files) != len(entries):
        raise ApiError(400, "not_a_file", f"the field {field!r} must carry files, not text")
    return [await _check_file(upload, max_file_bytes, max_pixels) for upload in files]


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
            self._refuse_unexpected(headers_read=False)  # the clearer reason first
            raise
        self._refuse_unexpected(headers_read=True)

    def _refuse_unexpected(self, *, headers_read: bool) -> None:
        """Refuse a part named otherwise than `field`; once its headers are read, a part
        with an empty name too (found by fuzzing: `name=""` was skipped, and the upload
        answered as if it had its image). Before, an empty name is one not read yet."""
        name = self._current_part.field_name  # set before the parser checks its limits
        if (name or headers_read) and name != self.field:
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
    if upload.size is not None and upload.size <= _OneFieldParser.spool_max_size:
        blob = await upload.read()  # in memory already
        await upload.close()  # one copy, not two
        return ImageFile(name, blob, inspect_image(blob, name, max_pixels))
    # On disk: checked from its ends and header, off the event loop, and left there.
    info = await run_in_threadpool(inspect_image_file, upload.file, name, max_pixels)
    return ImageFile(name, upload, info)
