"""Bad uploads get a clear 4xx JSON answer, quickly, and nothing is queued for them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import struct
import zlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from PIL import Image

from iras.aws import open_clients
from iras.config import Settings
from iras.web.validation import UploadRejected, clean_name, inspect_image, sniff_format
from tests.support import image_bytes, wait_until
from tests.web.conftest import Service, serve_gateway, wait_ready


def encoded(fmt: str, size: tuple[int, int] = (8, 8), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format=fmt)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` but carries no pixels: a would-be bomb."""
    full = encoded("PNG", (1, 1))
    ihdr = full[8 : 8 + 25]
    body = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body))
    assert len(chunk) == len(ihdr)
    return full[:8] + chunk + full[8 + 25 :]


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (encoded("JPEG"), "JPEG"),
        (encoded("PNG"), "PNG"),
        (encoded("GIF", mode="P"), "GIF"),
        (encoded("WEBP"), "WEBP"),
        (encoded("BMP"), None),
        (b"%PDF-1.7", None),
        (b"", None),
    ],
)
def test_sniff_format(head: bytes, fmt: str | None) -> None:
    assert sniff_format(head[:16]) == fmt


@pytest.mark.parametrize(
    ("blob", "status", "code"),
    [
        (b"", 400, "empty_file"),
        (b"hello, I am text", 415, "unsupported_media_type"),
        (encoded("BMP"), 415, "unsupported_media_type"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 400, "truncated_image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40 + b"IEND\xaeB`\x82", 400, "invalid_image"),
        (png_header_only(50_000, 50_000), 413, "too_many_pixels"),
    ],
)
def test_inspect_image_rejections(blob: bytes, status: int, code: str) -> None:
    with pytest.raises(UploadRejected) as rejected:
        inspect_image(blob, "x.jpg", max_pixels=10_000_000)
    assert (rejected.value.status, rejected.value.code) == (status, code)


def _saved(fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    picture = Image.radial_gradient("L").convert("RGB").resize((120, 80))
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


COMPLETE_FILES = [
    pytest.param(_saved("JPEG"), id="jpeg"),
    pytest.param(_saved("JPEG", progressive=True), id="progressive-jpeg"),
    pytest.param(_saved("PNG"), id="png"),
    pytest.param(_saved("GIF"), id="gif"),
    pytest.param(_saved("WEBP"), id="webp"),
    pytest.param(_saved("WEBP", lossless=True), id="lossless-webp"),
]


@pytest.mark.parametrize("blob", COMPLETE_FILES)
def test_a_cut_off_image_is_refused_and_a_whole_one_is_not(blob: bytes) -> None:
    inspect_image(blob, "x", max_pixels=10_000_000)
    with pytest.raises(UploadRejected) as rejected:
        inspect_image(blob[:-2], "x", max_pixels=10_000_000)
    assert (rejected.value.status, rejected.value.code) == (400, "truncated_image")
    with pytest.raises(UploadRejected) as rejected:
        inspect_image(blob[: len(blob) // 2], "x", max_pixels=10_000_000)
    assert (rejected.value.status, rejected.value.code) == (400, "truncated_image")


def _with_thumbnail(jpeg: bytes) -> bytes:
    """`jpeg` with a whole small JPEG inside an APP1 segment, as cameras embed thumbnails."""
    thumbnail = encoded("JPEG", (16, 12))
    payload = b"Exif\x00\x00" + thumbnail
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


def test_a_thumbnail_does_not_make_a_cut_off_jpeg_look_whole() -> None:
    whole = _with_thumbnail(_saved("JPEG"))
    inspect_image(whole, "x", max_pixels=10_000_000)
    inspect_image(whole + b"trailing bytes some cameras add", "x", max_pixels=10_000_000)
    for cut in (whole[:-2], whole[: len(whole) - 200]):
        with pytest.raises(UploadRejected) as rejected:
            inspect_image(cut, "x", max_pixels=10_000_000)
        assert (rejected.value.status, rejected.value.code) == (400, "truncated_image")
    headers_only = whole[: whole.index(b"\xff\xda", whole.index(b"\xff\xd9"))]
    with pytest.raises(UploadRejected) as rejected:
        inspect_image(headers_only, "x", max_pixels=10_000_000)
    assert (rejected.value.status, rejected.value.code) == (400, "truncated_image")


def test_bytes_after_a_jpegs_end_are_allowed() -> None:
    inspect_image(_saved("JPEG") + b"appended by a camera", "x", max_pixels=10_000_000)


def test_inspect_image_accepts_and_measures() -> None:
    info = inspect_image(encoded("PNG", (30, 20)), "a.png", max_pixels=600)
    assert (info.format, info.width, info.height, info.media_type) == ("PNG", 30, 20, "image/png")
    with pytest.raises(UploadRejected, match="limit is 599"):
        inspect_image(encoded("PNG", (30, 20)), "a.png", max_pixels=599)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("cat.jpg", "cat.jpg"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("a\x00b\r\nc.png", "abc.png"),
        ("..", "image"),
        ("", "image"),
        (None, "image"),
        ("x" * 500 + ".jpg", "x" * 200),
        ("  spaced .jpg ", "spaced .jpg"),
    ],
)
def test_clean_name(raw: str | None, clean: str) -> None:
    assert clean_name(raw) == clean


@pytest.mark.parametrize(
    ("files", "data", "status", "code"),
    [
        ({"myfile": ("a.jpg", b"")}, None, 400, "empty_file"),
        ({"myfile": ("a.jpg", b"GIF? no, text")}, None, 415, "unsupported_media_type"),
        ({"other": ("a.jpg", image_bytes())}, None, 400, "unexpected_field"),
        (None, {"myfile": "just text"}, 415, "multipart_expected"),
        ({"x": ("a.jpg", image_bytes())}, {"myfile": "text"}, 400, "unexpected_field"),
        ({"myfile": ("a.jpg", image_bytes()[:-600])}, None, 400, "truncated_image"),
    ],
    ids=["empty", "text", "wrong-field", "urlencoded", "text-and-wrong-file", "truncated"],
)
async def test_upload_validation_errors(
    gateway_only: Service,
    files: dict | None,  # type: ignore[type-arg]
    data: dict | None,  # type: ignore[type-arg]
    status: int,
    code: str,
) -> None:
    response = await gateway_only.http.post("/upload", files=files, data=data)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == code and body["detail"]


def multipart(*parts: tuple[str, str | None, bytes]) -> tuple[bytes, dict[str, str]]:
    """A multipart body of (field, file name or None for text, content), and its header."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--b\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return body + b"--b--\r\n", {"content-type": "multipart/form-data; boundary=b"}


async def test_text_in_the_file_field_is_missing_a_file(gateway_only: Service) -> None:
    body, headers = multipart(("myfile", None, b"not a file"))
    response = await gateway_only.http.post("/upload", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == {
        "error": "missing_file",
        "detail": "no file in the form field 'myfile'",
    }


@pytest.mark.parametrize(
    ("path", "parts", "extra", "accepted"),
    [
        # The course's generator sends only `myfile`: anything beside it is a mistake.
        ("/upload", [("myfile", "a.jpg"), ("note", None)], "text field 'note'", "'myfile'"),
        (
            "/upload",
            [("myfile", "a.jpg"), ("myfile2", "b.jpg")],
            "file field 'myfile2'",
            "'myfile'",
        ),
        # `wait` is a query parameter (as `iras classify` and the page send it), not a field.
        ("/v1/classify", [("wait", None), ("files", "a.jpg")], "text field 'wait'", "'files'"),
        ("/v1/classify", [("files", "a.jpg"), ("file", "b.jpg")], "file field 'file'", "'files'"),
        # A part with an empty name (found by fuzzing) was skipped, and the upload answered.
        ("/upload", [("myfile", "a.jpg"), ("", None)], "text field ''", "'myfile'"),
    ],
    ids=["upload-text", "upload-file", "classify-text", "classify-file", "upload-nameless"],
)
async def test_extra_form_fields_are_refused_by_name(
    gateway_only: Service,
    gateway_settings: Settings,
    path: str,
    parts: list[tuple[str, str | None]],
    extra: str,
    accepted: str,
) -> None:
    body, headers = multipart(
        *((name, filename, image_bytes() if filename else b"yes") for name, filename in parts)
    )
    response = await gateway_only.http.post(path, content=body, headers=headers)
    assert response.status_code == 400
    answer = response.json()
    assert answer["error"] == "unexpected_field"
    assert extra in answer["detail"] and f"accepted is {accepted}" in answer["detail"]
    assert await _count_inputs(gateway_settings) == 0


async def test_an_extra_field_ahead_of_a_big_file_still_gets_its_answer(
    gateway_only: Service,
) -> None:
    """Refused at the extra part's headers, with megabytes still to come: the 400 must not
    be lost to a connection reset."""
    filler = b"\0" * 8_000_000
    body, headers = multipart(("note", None, b"hi"), ("myfile", "big.jpg", filler))
    response = await gateway_only.http.post("/upload", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "unexpected_field"
    assert (await gateway_only.http.get("/healthz")).status_code == 200


@contextlib.contextmanager
def uvicorn_logs_in(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Let `caplog` see uvicorn's error log too: uvicorn's logger does not propagate."""
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO):
            yield
    finally:
        logger.removeHandler(caplog.handler)


async def _open_upload(
    url: httpx.URL, path: str, field: str, sent_bytes: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """A raw connection that has sent an upload's headers and `sent_bytes` of its body
    (half if None); returns it and the rest of the body."""
    body, headers = multipart((field, "raw.jpg", image_bytes(seed=len(path))))
    sent_bytes = len(body) // 2 if sent_bytes is None else sent_bytes
    reader, writer = await asyncio.open_connection(url.host, url.port)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    writer.write(head.encode() + body[:sent_bytes])
    await writer.drain()
    return reader, writer, body[sent_bytes:]


async def _metric(http: httpx.AsyncClient, series: str) -> float:
    """The value of one series in /metrics (0 if absent), e.g. `name{label="x"}`."""
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_client_leaving_mid_upload_is_one_warning_and_nobody_else_notices(
    gateway_only: Service, gateway_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    http = gateway_only.http
    left = 'iras_uploads_rejected_total{reason="client_disconnected"}'
    with uvicorn_logs_in(caplog):
        # Another client's upload is under way when this one leaves; a third one starts.
        slow_reader, slow_writer, slow_rest = await _open_upload(
            http.base_url, "/v1/classify", "files", 100
        )
        _, leaver, _ = await _open_upload(http.base_url, "/upload", "myfile")
        other = asyncio.create_task(
            http.post("/v1/classify", files=[("files", ("other.jpg", image_bytes(seed=4)))])
        )
        leaver.close()
        await wait_until(lambda: _metric_is(http, left, 1.0))

        slow_writer.write(slow_rest)
        async with asyncio.timeout(10):
            status_line = await slow_reader.readline()
        slow_writer.close()
        assert status_line.startswith(b"HTTP/1.1 200"), status_line
        assert (await other).status_code == 200
        assert (await http.get("/healthz")).status_code == 200

    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors
    warned = [r for r in caplog.records if "abandoned" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING and not warned[0].exc_info
    assert await _metric(http, 'iras_http_requests_total{route="/upload",status="499"}') == 1
    assert await _count_inputs(gateway_settings) == 2  # the two finished uploads only


async def _metric_is(http: httpx.AsyncClient, series: str, value: float) -> bool:
    return await _metric(http, series) == value


async def test_two_files_on_upload_are_refused(gateway_only: Service) -> None:
    files = [("myfile", ("a.jpg", image_bytes())), ("myfile", ("b.jpg", image_bytes()))]
    response = await gateway_only.http.post("/upload", files=files)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_form"


async def test_not_multipart_is_refused(gateway_only: Service) -> None:
    response = await gateway_only.http.post(
        "/v1/classify", content=b"raw", headers={"content-type": "image/jpeg"}
    )
    assert response.status_code == 415
    assert response.json()["error"] == "multipart_expected"


async def test_one_bad_file_refuses_the_whole_request(
    gateway_only: Service, gateway_settings: Settings
) -> None:
    files = [("files", ("good.jpg", image_bytes())), ("files", ("bad.jpg", b"nope"))]
    response = await gateway_only.http.post("/v1/classify", files=files)
    assert response.status_code == 415 and "bad.jpg" in response.json()["detail"]
    # Nothing was queued for the good one either.
    objects = await _count_inputs(gateway_settings)
    assert objects == 0


async def _count_inputs(settings: Settings) -> int:
    async with open_clients(settings) as aws:
        listed = await aws.s3.list_objects_v2(Bucket=settings.input_bucket)
    return int(listed.get("KeyCount", 0))


@pytest.fixture
async def strict_gateway(
    gateway_settings: Settings, resources: object
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway with small limits: 3 files, 20 kB per file, 100 kB per request."""
    settings = gateway_settings.model_copy(
        update={
            "max_files_per_request": 3,
            "max_upload_bytes": 20_000,
            "max_request_bytes": 100_000,
        }
    )
    async with (
        serve_gateway(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        await wait_ready(http)
        yield http


def noisy_png(side: int) -> bytes:
    """A PNG of random pixels: it does not compress, so its size is about 3 * side^2."""
    import os

    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def test_file_over_the_byte_limit(strict_gateway: httpx.AsyncClient) -> None:
    response = await strict_gateway.post("/upload", files={"myfile": ("big.png", noisy_png(100))})
    assert response.status_code == 413
    assert response.json()["error"] == "file_too_large"
    assert "IRAS_MAX_UPLOAD_BYTES" in response.json()["detail"]


async def test_request_over_the_body_limit_is_cut_off(strict_gateway: httpx.AsyncClient) -> None:
    response = await strict_gateway.post("/upload", files={"myfile": ("huge.png", noisy_png(300))})
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"

    # No Content-Length: the limit must hold while a chunked body streams in. A raw socket
    # shows the server answering 413 long before the client would have finished sending.
    host, port = strict_gateway.base_url.host, strict_gateway.base_url.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
    )
    chunk = b"\0" * 10_000
    sent = 0
    with contextlib.suppress(ConnectionError):
        for _ in range(3000):  # 30 MB, 300 times the limit
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            sent += len(chunk)
            if reader.at_eof() or len(reader._buffer) > 0:  # type: ignore[attr-defined]
                break
    try:
        status_line = await asyncio.wait_for(reader.readline(), 10)
    except ConnectionResetError:  # the 413 was sent, but a reset may overtake it
        status_line = b"HTTP/1.1 413 (reset before read)"
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 413")
    assert sent < 30_000_000  # answered long before the body ended (socket buffers hold a few MB)


async def test_too_many_files(strict_gateway: httpx.AsyncClient) -> None:
    files = [("files", (f"f{i}.jpg", image_bytes(size=(16, 16)))) for i in range(4)]
    response = await strict_gateway.post("/v1/classify", files=files)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_form"
    assert "3" in response.json()["detail"]
