"""The FastAPI application factory: `create_app(settings)`.

Nothing is global: the app builds its AWS clients, gateway and metrics in its lifespan
from the settings it is given, so tests (and several gateways in one process) each get
their own.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from iras import __version__
from iras.aws import open_clients
from iras.aws.errors import fail_fast_when_unreachable
from iras.config import Settings
from iras.telemetry.tracing import (
    GATEWAY_SERVICE,
    HTTP_SPANS_ONLY,
    flush_tracing,
    start_tracing,
)
from iras.web.access import Access
from iras.web.body_limits import BodySizeLimit, body_limits
from iras.web.errors import install_error_handlers
from iras.web.fleet_models import FleetModels
from iras.web.gateway import Gateway
from iras.web.lookup import open_lookups
from iras.web.metrics import GatewayMetrics, RequestMetrics
from iras.web.routes import classify, course, jobs, models, ops, results
from iras.web.upload_budget import UploadBudget

#: The live page, package data of `iras` (`iras/static`), found the same way wherever
#: the package is: in the checkout `src/iras/static` is a symlink to the top-level
#: `static/`, the page's one copy, which an editable install (`./dev`) thus serves as it
#: is; a wheel (`pip install .`, the web image) holds a copy of its files. IRAS installs
#: only as files on disk (not zipped), so the resource is a real folder.
DEFAULT_STATIC_DIR = Path(str(importlib.resources.files("iras") / "static"))

#: Long polls the gateway keeps open at once (reply listener), for the connection pool.
_GATEWAY_LONG_POLLS = 4


def create_app(
    settings: Settings,
    static_dir: Path | None = DEFAULT_STATIC_DIR,
    on_started: Callable[[], None] | None = None,
) -> FastAPI:
    """The gateway app for `settings`; `static_dir=None` serves no page.

    `on_started` runs once the gateway is up, before the first request: the commands that
    serve it exempt their start-up objects from garbage collection there
    (`iras.runtime.freeze_startup_objects`), a choice for a whole process, not for an app.
    """
    metrics = GatewayMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            open_clients(
                settings,
                concurrent_long_polls=_GATEWAY_LONG_POLLS,
                objects_apart=settings.lookup_connections,  # lookups' pool, apart from uploads'
            ) as aws,
            open_lookups(settings, aws) as lookups,
        ):
            # An upload answers 503 at once rather than wait on an endpoint that refuses
            # connections; the gateway's loops back off by themselves.
            fail_fast_when_unreachable(aws.objects, aws.messages, aws.s3, aws.sqs)
            gateway = Gateway(settings, aws, metrics)
            app.state.gateway = gateway
            app.state.lookups = lookups
            await gateway.start()
            if on_started is not None:
                on_started()
            try:
                yield
            finally:
                await gateway.stop()
                flush_tracing()

    start_tracing(GATEWAY_SERVICE)  # off unless OTEL_* configures it
    app = FastAPI(
        title="IRAS",
        version=__version__,
        summary="Image Recognition as a Service: ImageNet labels for uploaded images.",
        lifespan=lifespan,
        telemetry=HTTP_SPANS_ONLY,
    )
    install_error_handlers(app)
    app.state.access = Access.from_settings(settings)
    app.state.upload_budget = budget = UploadBudget(settings.upload_budget_bytes)
    app.state.fleet_models = FleetModels()
    metrics.observe_upload_budget(budget.ledger)
    default_limit, route_limits = body_limits(settings)
    app.add_middleware(BodySizeLimit, default=default_limit, by_path=route_limits)
    app.add_middleware(RequestMetrics, metrics=metrics)

    # Before the page's mount at "/": a POST route there (the course's `POST /`) answers
    # POSTs only, and GET / still reaches the page.
    app.include_router(course.course_router(settings.course_route_fields))
    for module in (classify, results, jobs, models, ops):
        app.include_router(module.router)
    if static_dir is not None and static_dir.is_dir():
        app.mount("/", StaticFiles(directory=static_dir, html=True), name="static")
    return app
