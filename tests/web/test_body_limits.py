"""Each upload route takes the body its form needs, no more: one file for /upload."""

from __future__ import annotations

import io
import os

import httpx
from PIL import Image

from iras.config import Settings
from iras.infra.provision import Resources
from iras.web.body_limits import FORM_ROOM_BYTES, body_limits
from tests.web.conftest import serve_gateway, wait_ready

MiB = 1024 * 1024


def test_the_defaults_fit_a_course_upload_and_the_pages_largest_request() -> None:
    default, by_path = body_limits(Settings())
    # /upload: one image at IRAS_MAX_UPLOAD_BYTES (10 MiB) and its form's room.
    assert by_path["/upload"].max_bytes == 10 * MiB + FORM_ROOM_BYTES
    assert "IRAS_MAX_UPLOAD_BYTES" in by_path["/upload"].advice
    # /v1/classify: 500 such files would be 5 GB; IRAS_MAX_REQUEST_BYTES caps it at the
    # page's largest request, 8 files at the limit, each with its form's room.
    assert by_path["/v1/classify"].max_bytes == default.max_bytes == 8 * (10 * MiB + 64 * 1024)
    assert "IRAS_MAX_REQUEST_BYTES" in by_path["/v1/classify"].advice
    # Well within the default upload budget: three of the largest requests fit at once.
    assert 3 * default.max_bytes < Settings().upload_budget_bytes


def test_a_few_small_files_cap_the_classify_route_below_the_request_limit() -> None:
    settings = Settings(max_files_per_request=3, max_upload_bytes=20_000, max_request_bytes=MiB)
    _, by_path = body_limits(settings)
    assert by_path["/v1/classify"].max_bytes == 3 * (20_000 + FORM_ROOM_BYTES)
    assert "IRAS_MAX_FILES_PER_REQUEST = 3" in by_path["/v1/classify"].advice
    # A request limit below one file's needs is the limit of both.
    tight = Settings(max_upload_bytes=MiB, max_request_bytes=100_000)
    default, by_path = body_limits(tight)
    assert by_path["/upload"] == by_path["/v1/classify"] == default


def noisy_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_a_course_upload_over_one_files_limit_is_cut_off_by_its_route(
    gateway_settings: Settings, resources: Resources
) -> None:
    settings = gateway_settings.model_copy(
        update={"max_upload_bytes": 20_000, "max_request_bytes": 2 * MiB}
    )
    image = noisy_png(300)  # 270 kB: over 20 kB + the form's 64 kB, within 2 MiB
    async with (
        serve_gateway(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        await wait_ready(http)
        course = await http.post("/upload", files={"myfile": ("big.png", image)})
        assert course.status_code == 413
        assert course.json()["error"] == "request_too_large"
        assert "POST /upload takes one image" in course.json()["detail"]
        assert "IRAS_MAX_UPLOAD_BYTES" in course.json()["detail"]
        # /v1/classify reads the same body (its limit is many files'), and names the file.
        classify = await http.post("/v1/classify", files={"files": ("big.png", image)})
        assert classify.status_code == 413
        assert classify.json()["error"] == "file_too_large"
