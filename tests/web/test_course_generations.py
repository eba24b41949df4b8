"""Every generation of the CSE546 course's workload generator, as the course describes it.

The older generator posts to `/upload`, field `myfile`; the 2024-2026 one posts to the root
path `/` with one multipart part named `inputFile` (the file name the image's base name),
100 threads at once, and reads the text after the first `:` of a 200 answer as the label.
Both answer `<name without extension>:<label>`; `GET /` stays the live page. Which paths
and fields are course routes is IRAS_COURSE_ROUTES. Written from those facts, not from the
course's own files.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from iras.config import Settings
from iras.config.settings import parse_course_routes
from iras.infra.provision import Resources
from iras.model import Classifier, Prediction
from tests.support import image_bytes
from tests.web.conftest import ServedProcess, Service, serve_gateway, wait_ready

#: The 2024-2026 generator's burst: this many threads, each posting one image at once.
THREADS = 100
#: The most the burst may take here (one in-process worker, 2 shared cores): a hang fails.
BURST_TIMEOUT_S = 60


def label_of(classifier: Classifier, blob: bytes) -> str:
    (outcome,) = classifier.classify([blob])
    assert isinstance(outcome, Prediction), outcome
    return outcome.label


def generator_burst(url: str, images: dict[str, bytes]) -> list[httpx.Response]:
    """What the 2024-2026 generator does: one thread per image, all released together,
    each a plain synchronous POST of one `inputFile` part to the root path."""
    start = threading.Barrier(len(images))

    def post(name: str) -> httpx.Response:
        start.wait(timeout=BURST_TIMEOUT_S)
        return httpx.post(
            f"{url}/", files={"inputFile": (name, images[name])}, timeout=BURST_TIMEOUT_S
        )

    with ThreadPoolExecutor(max_workers=len(images)) as pool:
        return list(pool.map(post, images))


async def test_a_burst_of_100_root_posts_is_answered_name_colon_label(
    service: Service, classifier: Classifier
) -> None:
    images = {f"test_{i:03}.jpg": image_bytes(seed=300 + i) for i in range(THREADS)}
    expected = {
        name.removesuffix(".jpg"): await asyncio.to_thread(label_of, classifier, blob)
        for name, blob in images.items()
    }

    # In threads: the gateway and its worker run on this test's event loop.
    async with asyncio.timeout(BURST_TIMEOUT_S + 10):
        answers = await asyncio.to_thread(generator_burst, service.url, images)

    assert [answer.status_code for answer in answers] == [200] * THREADS, [
        answer.text for answer in answers if answer.status_code != 200
    ][:3]
    assert all(answer.headers["content-type"].startswith("text/plain") for answer in answers)
    got = dict(answer.text.split(":", 1) for answer in answers)  # as the generator reads it
    assert got == expected


async def test_both_generations_and_the_page_share_one_gateway(
    service: Service, classifier: Classifier
) -> None:
    blob = image_bytes(seed=77)
    label = label_of(classifier, blob)

    older = await service.http.post("/upload", files={"myfile": ("cat.jpg", blob)})
    newer = await service.http.post("/", files={"inputFile": ("cat.jpg", blob)})
    page = await service.http.get("/")

    assert (older.status_code, older.text) == (200, f"cat:{label}")
    assert (newer.status_code, newer.text) == (200, f"cat:{label}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.lstrip().lower().startswith("<!doctype html>")


async def test_a_root_post_with_another_field_is_told_the_one_it_reads(
    gateway_only: Service,
) -> None:
    http = gateway_only.http
    wrong_field = await http.post("/", files={"myfile": ("cat.jpg", image_bytes())})
    not_a_form = await http.post("/", content=b"cat", headers={"content-type": "image/jpeg"})
    older_wrong = await http.post("/upload", files={"inputFile": ("cat.jpg", image_bytes())})

    assert wrong_field.status_code == 400
    assert wrong_field.json()["error"] == "unexpected_field"
    assert "'inputFile'" in wrong_field.json()["detail"]
    assert not_a_form.status_code == 415 and "'inputFile'" in not_a_form.json()["detail"]
    assert older_wrong.status_code == 400 and "'myfile'" in older_wrong.json()["detail"]


async def test_a_root_post_is_held_to_one_files_limit(
    gateway_settings: Settings, resources: Resources
) -> None:
    """A course route takes one image: its body limit is one file's, as /upload's is."""
    settings = gateway_settings.model_copy(
        update={"max_upload_bytes": 20_000, "max_request_bytes": 2 * 1024 * 1024}
    )
    blob = b"\xff" * 200_000  # over 20 kB + the form's 64 kB, within 2 MiB
    async with serve_gateway(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        await wait_ready(http)
        answer = await http.post("/", files={"inputFile": ("big.jpg", blob)})
    assert answer.status_code == 413
    assert answer.json()["error"] == "request_too_large"
    assert "POST / takes one image" in answer.json()["detail"]


@pytest.mark.serve_env(IRAS_COURSE_ROUTES="/classify-me=img")
async def test_the_course_routes_are_configuration(
    served: ServedProcess, classifier: Classifier
) -> None:
    """`iras serve` with IRAS_COURSE_ROUTES set serves those routes and only those."""
    blob = image_bytes(seed=78)
    http = served.http

    custom = await http.post("/classify-me", files={"img": ("dog.png", blob)})
    root = await http.post("/", files={"inputFile": ("dog.png", blob)})
    upload = await http.post("/upload", files={"myfile": ("dog.png", blob)})
    document = (await http.get("/openapi.json")).json()
    page = await http.get("/")

    assert (custom.status_code, custom.text) == (200, f"dog:{label_of(classifier, blob)}")
    for removed in (root, upload):
        assert removed.status_code in (404, 405), removed.text
        assert removed.headers["content-type"] == "application/json"
        assert removed.json()["error"] in ("not_found", "method_not_allowed")
    body = document["paths"]["/classify-me"]["post"]["requestBody"]
    assert body["content"]["multipart/form-data"]["schema"]["required"] == ["img"]
    assert "/" not in document["paths"] and "/upload" not in document["paths"]
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def test_the_setting_reads_path_field_pairs_in_order() -> None:
    assert Settings().course_route_fields == (("/upload", "myfile"), ("/", "inputFile"))
    assert parse_course_routes(" /a = x ,, /b/c=y.z ") == (("/a", "x"), ("/b/c", "y.z"))
    assert Settings(course_routes=" /a = x ").course_routes == "/a=x"
    assert Settings(course_routes="").course_route_fields == ()  # no course routes at all


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("upload=myfile", "must start with '/'"),
        ("/upload", "is not <path>=<field>"),
        ("/upload=", "is not <path>=<field>"),
        ("/up load=myfile", "must start with '/'"),
        ("/upload=my file", "may hold only"),
        ("/=inputFile,/=myfile", "given twice"),
        ("/v1/classify=files", "IRAS's own route '/v1'"),
        ("/v1=files", "IRAS's own route '/v1'"),
        ("/readyz=x", "'/readyz'"),
        ("/healthz=x", "'/healthz'"),
        ("/metrics=x", "'/metrics'"),
        ("/docs/oauth2-redirect=x", "'/docs'"),
        ("/openapi.json=x", "'/openapi.json'"),
    ],
)
def test_a_bad_course_route_fails_at_start_saying_why(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("IRAS_COURSE_ROUTES", value)
    with pytest.raises(ValidationError, match="course_routes") as refused:
        Settings()
    assert says in str(refused.value)


def test_the_readme_shows_the_2024_2026_form() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "curl -F inputFile=@cat.jpg http://127.0.0.1:8000/" in readme
