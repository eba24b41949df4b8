"""The live page (`static/`) in a real browser, against the real stack.

The main test opens the page served by a real `iras serve` process (the `served`
fixture); the others use the `service` fixture, which runs the same app factory
(`create_app(settings)`) in-process with a real worker and the embedded AWS behind it. The browser is
Debian's Chromium (`apt-get install chromium`) driven by Playwright from PyPI; nothing is
downloaded (`playwright install` is never run). Screenshots go to `test-artifacts/`.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from iras.config import Settings
from iras.infra.provision import Resources
from iras.model import Classifier
from iras.web.api_keys import key_subprotocol
from tests.support import image_bytes
from tests.web.conftest import ServedProcess, Service, running_worker, serve_gateway, wait_ready

if TYPE_CHECKING:
    from playwright.async_api import (
        Browser,
        ConsoleMessage,
        Dialog,
        Locator,
        Page,
        Route,
        WebSocketRoute,
    )

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: How long a card may take from upload to label (a cold model on a busy 2-core machine).
CLASSIFIED_TIMEOUT_MS = 60_000

playwright_api = pytest.importorskip(
    "playwright.async_api",
    reason="the browser tests need the playwright package (pip install -e '.[dev]')",
)
expect = playwright_api.expect

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium)",
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def open_page(
    browser: Browser,
    service: Service,
    errors: list[str],
    width: int = 1280,
    before: Callable[[Page], Awaitable[None]] | None = None,
) -> Page:
    """A new tab on the service's page, once its scripts are running; JS errors go to `errors`.
    `before` runs on the tab before it loads the page (to route requests, say)."""
    page = await browser.new_page(viewport={"width": width, "height": 900})
    if before is not None:
        await before(page)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if is_page_error(m) else None)
    await page.goto(f"{service.url}/")
    await expect(page.locator("html")).to_have_attribute("data-ready", "true")
    return page


def is_page_error(message: ConsoleMessage) -> bool:
    """An error in the console, other than the 404 of a gateway without a scaler (the page
    then hides its fleet chart)."""
    if message.type != "error":
        return False
    return not message.location.get("url", "").endswith("/v1/scaler")


def write_images(folder: Path, count: int, first_seed: int) -> list[Path]:
    paths = []
    for index in range(count):
        path = folder / f"photo_{index}.jpg"
        path.write_bytes(image_bytes(seed=first_seed + index))
        paths.append(path)
    return paths


def card_named(page: Page, name: str) -> Locator:
    return page.get_by_test_id("card").filter(
        has=page.get_by_test_id("card-name").get_by_text(name, exact=True)
    )


async def worker_result(service: Service, card: Locator) -> dict[str, Any]:
    """What the worker returned for the request behind `card`, from the API."""
    request_id = await card.get_attribute("data-request-id")
    assert request_id, "a classified card names its request"
    response = await service.http.get(f"/v1/results/{request_id}")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def test_five_images_show_their_labels_live(
    browser: Browser, served: ServedProcess, tmp_path: Path
) -> None:
    """Through `iras serve` itself, as a user would open the page."""
    service: Service = served
    errors: list[str] = []
    page = await open_page(browser, service, errors)
    paths = write_images(tmp_path, 5, first_seed=60)

    await page.get_by_test_id("file-input").set_input_files(paths)

    cards = page.get_by_test_id("card")
    await expect(cards).to_have_count(5)
    classified = page.locator('[data-testid="card"][data-status="classified"]')
    await expect(classified).to_have_count(5, timeout=CLASSIFIED_TIMEOUT_MS)
    await expect(page.get_by_test_id("done-count")).to_have_text("5/5")
    await expect(page.get_by_test_id("rate")).not_to_have_text("0.0 img/s")

    request_ids = set()
    for path in paths:
        card = card_named(page, path.name)
        await expect(card.get_by_test_id("status")).to_have_text("Classified")
        result = await worker_result(service, card)
        request_ids.add(result["request_id"])
        assert result["name"] == path.name
        label = await card.get_by_test_id("label").text_content()
        assert label and label == result["label"]
        top_labels = await card.get_by_test_id("top-item").locator(".top-label").all_text_contents()
        assert top_labels == [entry["label"] for entry in result["top"][:3]]
        for score in await card.get_by_test_id("score").all_text_contents():
            assert re.fullmatch(r"(\d{1,3}\.\d|<0\.1)%", score)
    assert len(request_ids) == 5
    # The fleet scaled out for these images: the header says why, what the worker it
    # launched measured (its rate and boot beside the guesses), and what it cost.
    await expect(page.get_by_test_id("fleet-decisions")).to_contain_text("0 → 1")
    await expect(page.get_by_test_id("fleet-figures")).not_to_contain_text("not measured")
    await expect(page.get_by_test_id("fleet-rate")).to_have_text(re.compile(r"^[\d.]+\u00a0img/s$"))
    await expect(page.get_by_test_id("fleet-cost-per-1000")).to_have_text(re.compile(r"\$"))
    assert errors == []

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "page.png", full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.screenshot(path=ARTIFACTS / "page-phone.png", full_page=True)


async def test_a_refused_file_shows_the_server_error_beside_a_classified_one(
    browser: Browser, service: Service, tmp_path: Path
) -> None:
    bad = tmp_path / "x.jpg"
    bad.write_text("this is text, not a JPEG")
    good = tmp_path / "good.png"
    good.write_bytes(image_bytes(seed=5, fmt="PNG"))
    refusal = await service.http.post(
        "/v1/classify", files={"files": ("x.jpg", bad.read_bytes(), "image/jpeg")}
    )
    assert refusal.status_code == 415
    errors: list[str] = []
    page = await open_page(browser, service, errors)

    await page.get_by_test_id("file-input").set_input_files([bad, good])

    bad_card, good_card = card_named(page, "x.jpg"), card_named(page, "good.png")
    await expect(bad_card.get_by_test_id("status")).to_have_text("Error")
    await expect(bad_card.get_by_test_id("error")).to_have_text(refusal.json()["detail"])
    await expect(bad_card.get_by_test_id("label")).to_be_hidden()
    await expect(good_card).to_have_attribute(
        "data-status", "classified", timeout=CLASSIFIED_TIMEOUT_MS
    )
    label = await good_card.get_by_test_id("label").text_content()
    assert label and label == (await worker_result(service, good_card))["label"]
    await expect(page.get_by_test_id("done-count")).to_have_text("2/2")
    # The browser logs the 415 itself; no other error may appear.
    assert [e for e in errors if "415" not in e] == []


async def test_a_dropped_socket_catches_up_and_reconnects(
    browser: Browser, service: Service, tmp_path: Path
) -> None:
    """The first socket of every job is cut before any result: the page must GET the job,
    reconnect, and still show every label."""
    attempts: dict[str, int] = {}

    async def drop_first(route: WebSocketRoute) -> None:
        attempts[route.url] = attempts.get(route.url, 0) + 1
        if attempts[route.url] == 1:
            await route.close(code=4000, reason="dropped by the test")
        else:
            route.connect_to_server()

    job_gets: list[str] = []
    errors: list[str] = []
    page = await browser.new_page()
    await page.route_web_socket(re.compile(r".*/v1/jobs/[^/]+/ws$"), drop_first)
    page.on(
        "request",
        lambda r: job_gets.append(r.url) if re.search(r"/v1/jobs/[^/]+$", r.url) else None,
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{service.url}/")
    await expect(page.locator("html")).to_have_attribute("data-ready", "true")

    await page.get_by_test_id("file-input").set_input_files(write_images(tmp_path, 3, 80))

    classified = page.locator('[data-testid="card"][data-status="classified"]')
    await expect(classified).to_have_count(3, timeout=CLASSIFIED_TIMEOUT_MS)
    await expect(page.get_by_test_id("done-count")).to_have_text("3/3")
    assert len(attempts) == 3, "one job per image, each followed over its own socket"
    assert len(job_gets) >= 3, "each dropped socket is followed by a catch-up GET"
    assert errors == []


async def test_pure_helpers_in_the_browser(browser: Browser, service: Service) -> None:
    errors: list[str] = []
    page = await open_page(browser, service, errors)
    values = await page.evaluate(
        """async () => {
          const f = await import("/js/format.js");
          const b = await import("/js/backoff.js");
          const u = await import("/js/uploader.js");
          const c = await import("/js/fleetchart.js");
          const a = await import("/js/api.js");
          return {
            protocols: [null, "k/+=, \\u00fc\\u{1F511}"].map(a.socketProtocols),
            percent: [0.8234, 0.0004, 1, NaN].map(f.formatPercent),
            elapsed: [4200, 65000, 3725000].map(f.formatElapsed),
            rate: f.formatRate(f.ratePerSecond(5, 2000)),
            backoff: [0, 3, 10].map((n) => b.backoffDelayMs(n, {}, () => 1)),
            retryAfter: [b.retryAfterMs("2", 100), b.retryAfterMs(null, 100)],
            groups: [5, 7, 100].map((n) => u.groupSizes(n, 6, 8)),
            fleetEmpty: c.fleetPaths([], { width: 100, height: 40, windowS: 10 }),
            fleetTwo: c.fleetPaths(
              [
                { t: 100, workers: 0, desired: 1, backlog: 3, in_flight: 0 },
                { t: 105, workers: 1, desired: 1, backlog: 0, in_flight: 2 },
              ],
              { width: 100, height: 40, windowS: 10, workersMax: 2 },
            ),
            nice: [0, 3, 37, 100, 101].map(c.niceCeiling),
          };
        }"""
    )
    # The key's subprotocol is base64url of its UTF-8, as the gateway decodes it.
    assert values.pop("protocols") == [
        ["iras"],
        ["iras", key_subprotocol("k/+=, \u00fc\U0001f511")],
    ]
    assert values == {
        "percent": ["82.3%", "<0.1%", "100.0%", "\u2013"],
        "elapsed": ["4.2 s", "1:05", "1:02:05"],
        "rate": "2.5 img/s",
        # 500 ms doubled per attempt, capped at 15 s; random() = 1 takes the whole ceiling.
        "backoff": [500, 4000, 15000],
        "retryAfter": [2000, 100],
        # Every lane busy first, then groups of at most 8.
        "groups": [[1] * 5, [2, 1, 1, 1, 1, 1], [8] * 9 + [7] * 4],
        "fleetEmpty": {
            "workers": "",
            "desired": "",
            "backlog": "",
            "inFlight": "",
            "workersMax": 1,
            "backlogMax": 1,
            "startS": -10,
            "endS": 0,
        },
        # The window is t 95..105 (10 s ending at the newest point): 10 units per second.
        "fleetTwo": {
            "workers": "M50 40H100V20",
            "desired": "M50 20H100",
            "backlog": "M50 40V16H100V24V40Z",  # 3 then 0 + 2 in flight, of at most 5
            "inFlight": "M50 40V40H100V24V40Z",
            "workersMax": 2,
            "backlogMax": 5,
            "startS": 95,
            "endS": 105,
        },
        "nice": [1, 5, 50, 100, 200],
    }
    assert errors == []


def fake_scaler() -> dict[str, Any]:
    """A /v1/scaler answer: the fleet scaled 0 -> 2 over a backlog that grew, then drained."""
    now = 1_732_300_000.0
    timeline = []
    for step in range(60):  # one point per 4 s: the last 4 minutes
        workers = 0 if step < 8 else 1 if step < 14 else 2
        desired = 0 if step < 5 else 1 if step < 10 else 2
        backlog = max(0, min(120, step * 9) - max(0, step - 30) * 6)
        timeline.append(
            {
                "t": now - (59 - step) * 4,
                "workers": workers,
                "desired": desired,
                "backlog": backlog,
                "in_flight": 16 if workers == 2 else 8 * workers,
            }
        )
    timeline[-1].update(backlog=37, in_flight=16)
    decisions = [
        {"t": now - 220, "from": 0, "to": 1, "reason": "backlog 9 -> 1 workers", "figures": {}},
        {
            "t": now - 200,
            "from": 1,
            "to": 2,
            "reason": "backlog 45 -> 2 workers (capped at 2)",
            "figures": {"work": 45.0, "needed": None},
        },
    ]
    return {
        "workers": 2,
        "desired": 2,
        "starting": 0,
        "backlog": 37,
        "in_flight": 16,
        "max_workers": 2,
        "min_workers": 0,
        "capacity": {
            "worker_rate_ips": {"configured": 20.0, "measured": 23.64, "samples": 40},
            "boot_s": {"configured": 40.0, "measured": None, "samples": 0},
        },
        "last_decision": {"reason": decisions[-1]["reason"], "figures": {}},
        "decisions": decisions,
        "images": 410,
        "instance_seconds": 300.0,
        "price_per_hour": 0.0416,
        "cost": 0.0034667,
        "cost_per_1000": 0.0084553,
        "timeline": timeline,
    }


async def test_the_fleet_chart_shows_workers_and_backlog(
    browser: Browser, service: Service
) -> None:
    """A fake /v1/scaler (no scaler needs to run): the header charts its fleet and backlog."""

    async def scaler(route: Route) -> None:
        await route.fulfill(
            status=200, content_type="application/json", body=json.dumps(fake_scaler())
        )

    errors: list[str] = []
    page = await open_page(
        browser, service, errors, before=lambda page: page.route("**/v1/scaler", scaler)
    )

    fleet = page.get_by_test_id("fleet")
    await expect(fleet).to_be_visible()
    await expect(page.get_by_test_id("fleet-workers")).to_have_text("2/2")
    await expect(page.get_by_test_id("fleet-backlog")).to_have_text("37")
    chart = page.get_by_test_id("fleet-chart")
    await expect(chart).to_have_attribute("role", "img")
    await expect(chart).to_have_attribute("aria-label", re.compile(r"2 running of 2 .*37 queued"))
    workers_line = await fleet.locator("path.fleet-workers-line").get_attribute("d")
    assert workers_line and workers_line.startswith("M") and "V" in workers_line
    # What the scaler measured, beside its guesses; what the fleet cost; why it scaled.
    await expect(page.get_by_test_id("fleet-rate")).to_have_text("24\u00a0img/s")
    await expect(page.get_by_test_id("fleet-figures")).to_contain_text("(guess 20)")
    await expect(page.get_by_test_id("fleet-boot")).to_have_text("40\u00a0s")
    await expect(page.get_by_test_id("fleet-figures")).to_contain_text("not measured yet")
    await expect(page.get_by_test_id("fleet-cost")).to_have_text("$0.0035")
    await expect(page.get_by_test_id("fleet-cost-per-1000")).to_have_text("$0.0085")
    decisions = page.get_by_test_id("fleet-decision")
    await expect(decisions).to_have_count(2)
    await expect(decisions.first).to_contain_text("1 → 2")  # newest first
    await expect(decisions.first).to_contain_text("backlog 45 -> 2 workers (capped at 2)")
    await expect(decisions.first.locator(".fleet-reason")).to_have_attribute(
        "title", "work 45, needed \u2013"
    )
    async with page.expect_request("**/v1/scaler", timeout=5_000):
        pass  # it keeps polling
    assert errors == []

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(
        path=ARTIFACTS / "fleet.png", clip={"x": 0, "y": 0, "width": 1280, "height": 260}
    )
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.screenshot(
        path=ARTIFACTS / "fleet-phone.png", clip={"x": 0, "y": 0, "width": 390, "height": 320}
    )
    await page.emulate_media(color_scheme="dark")
    await page.screenshot(
        path=ARTIFACTS / "fleet-phone-dark.png", clip={"x": 0, "y": 0, "width": 390, "height": 320}
    )
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.screenshot(
        path=ARTIFACTS / "fleet-dark.png", clip={"x": 0, "y": 0, "width": 1280, "height": 260}
    )


PAGE_KEY = "page-secret-0123456789"


@pytest.fixture
async def keyed_service(
    gateway_settings: Settings, resources: Resources, classifier: Classifier
) -> AsyncIterator[Service]:
    """Gateway (IRAS_API_KEYS set) + one worker, ready; its client sends the valid key."""
    settings = gateway_settings.model_copy(
        update={"api_keys": (PAGE_KEY, "other-secret-0123456789")}
    )
    async with (
        serve_gateway(settings) as url,
        running_worker(settings, resources, classifier) as worker,
        httpx.AsyncClient(base_url=url, timeout=60, headers={"X-API-Key": PAGE_KEY}) as http,
    ):
        await wait_ready(http)
        yield Service(url, http, worker)


async def open_keyed_page(
    browser: Browser, service: Service, answers: list[str | None]
) -> tuple[Page, list[str], list[str]]:
    """The page with its prompts answered from `answers` (None: cancel); returns it, the
    questions it asked, and its errors other than the browser's own 401 lines."""
    questions: list[str] = []
    errors: list[str] = []

    async def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        reply = answers[len(questions) - 1] if len(questions) <= len(answers) else None
        await (dialog.dismiss() if reply is None else dialog.accept(reply))

    async def before(page: Page) -> None:
        page.on("dialog", answer)

    page = await open_page(browser, service, errors, before=before)
    return page, questions, errors


async def test_the_page_asks_for_an_api_key_and_sends_it_with_every_call(
    browser: Browser, keyed_service: Service, tmp_path: Path
) -> None:
    """Nothing is asked on load; the first upload asks, a refused key is asked for again,
    and the valid one then carries the upload and the job's WebSocket."""
    page, questions, errors = await open_keyed_page(browser, keyed_service, ["wrong", PAGE_KEY])
    sockets: list[str] = []
    job_gets: list[str] = []
    requested: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.on("request", lambda r: requested.append(r.url))
    page.on(
        "request",
        lambda r: job_gets.append(r.url) if re.search(r"/v1/jobs/[^/]+$", r.url) else None,
    )
    assert questions == []

    await page.get_by_test_id("file-input").set_input_files(write_images(tmp_path, 1, 120))

    card = page.get_by_test_id("card")
    await expect(card).to_have_attribute("data-status", "classified", timeout=CLASSIFIED_TIMEOUT_MS)
    label = await card.get_by_test_id("label").text_content()
    assert label and label == (await worker_result(keyed_service, card))["label"]
    assert len(questions) == 2
    assert "needs an API key" in questions[0] and "an API key is required" in questions[0]
    assert "refused" in questions[1] and "not valid" in questions[1]
    # The result came over the WebSocket, which carried the key as a subprotocol, never in
    # its URL (load balancers log URLs): no catch-up GET was needed.
    assert len(sockets) == 1 and PAGE_KEY not in sockets[0] and "?" not in sockets[0]
    assert requested and all(PAGE_KEY not in url for url in requested)
    assert job_gets == []
    assert await page.evaluate("localStorage.getItem('iras-api-key')") == PAGE_KEY
    assert [e for e in errors if "401" not in e] == []


async def test_a_key_refused_again_and_again_is_explained_and_not_asked_for_forever(
    browser: Browser, keyed_service: Service, tmp_path: Path
) -> None:
    page, questions, errors = await open_keyed_page(browser, keyed_service, ["a", "b", "c", "d"])
    first, second = write_images(tmp_path, 2, 130)

    await page.get_by_test_id("file-input").set_input_files([first])
    card = card_named(page, first.name)
    await expect(card.get_by_test_id("status")).to_have_text("Error")
    await expect(card.get_by_test_id("error")).to_have_text(
        "the API key is not valid (reload the page to enter a key)"
    )
    assert len(questions) == 3  # MAX_KEY_PROMPTS, then it explains instead of asking

    await page.get_by_test_id("file-input").set_input_files([second])
    await expect(card_named(page, second.name).get_by_test_id("status")).to_have_text("Error")
    assert len(questions) == 3
    assert [e for e in errors if "401" not in e] == []
