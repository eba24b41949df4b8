"""`POST /upload` and `POST /`: the CSE546 course workload generators' protocol.

One image in one multipart field (`myfile` on `/upload` for the older generator,
`inputFile` on `/` for the 2024-2026 one: IRAS_COURSE_ROUTES, so a route per pair is
built from the settings); the answer, once classified, is the plain text
`<name without extension>:<label>`. The generator sends a hundred of these at once and
waits for each, so the handler holds the request open until the result arrives, then
forgets the job: the result stays in the output bucket under its request id.

Such a job is stored without a manifest (one S3 call saved per upload), unless its wait
times out: the 504 tells the client to fetch the result by id, so the manifest, which
names its owner, is stored then, before answering.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from iras.messages import name_stem
from iras.web.access import UploaderDep
from iras.web.deps import GatewayDep, SubmitterDep
from iras.web.errors import ApiError
from iras.web.gateway import Gateway
from iras.web.routes.submitting import accept_images, wait_timeout_without_manifest
from iras.web.schemas import UPLOAD_ERRORS, WAIT_TIMEOUT, error_responses, multipart_upload
from iras.web.submit import Submitter

_ANSWER = {
    "description": "The image's name without its extension, a colon, and its label.",
    "content": {"text/plain": {"schema": {"type": "string"}, "example": "test_00:goldfish"}},
}

_RESPONSES = {
    200: _ANSWER,
    **error_responses(
        {
            **UPLOAD_ERRORS,
            422: "`unclassifiable`: the image passed the checks but the model could not "
            "read it; the detail says why.",
            504: WAIT_TIMEOUT,
        },
        text_route=True,
    ),
}

Endpoint = Callable[[Request, Gateway, Submitter, str | None], Awaitable[PlainTextResponse]]


def course_router(routes: Sequence[tuple[str, str]]) -> APIRouter:
    """One POST route per (path, field) of IRAS_COURSE_ROUTES, each documenting its form."""
    router = APIRouter(tags=["course protocol"])
    for path, field in routes:
        router.add_api_route(
            path,
            _endpoint(field),
            methods=["POST"],
            response_class=PlainTextResponse,
            summary=f"Classify one image (multipart field `{field}`); answers `name:label`",
            openapi_extra=multipart_upload(field, many=False),
            responses=_RESPONSES,
        )
    return router


def _endpoint(field: str) -> Endpoint:
    """The handler of a course route reading `field`; its name, `upload`, makes the
    operation ids (`upload_upload_post`, `upload__post`)."""

    async def upload(
        request: Request, gateway: GatewayDep, submitter: SubmitterDep, caller: UploaderDep
    ) -> PlainTextResponse:
        return await course_upload(request, gateway, submitter, caller, field)

    return upload


async def course_upload(
    request: Request, gateway: Gateway, submitter: Submitter, caller: str | None, field: str
) -> PlainTextResponse:
    """The course protocol's answer to one upload in `field`, whichever route it came by."""
    job = await accept_images(
        request, gateway, submitter, field, max_files=1, manifest=False, owner=caller
    )
    (ref,) = job.requests
    result = await gateway.book.wait_for(ref.request_id, gateway.settings.wait_timeout_s)
    if result is None:  # its client is told to look the result up: make that possible
        raise await wait_timeout_without_manifest(gateway, submitter, job, ref.request_id)
    # Answered: the client holds the only copy it will ask for and never learned the job's
    # ids, so the book need not keep it (the course generator's thousands of uploads
    # would otherwise fill it). A late duplicate reply then counts as drained.
    gateway.book.discard(job.job_id)
    if "error" in result:
        raise ApiError(422, "unclassifiable", f"{ref.name!r}: {result['error']}")
    return PlainTextResponse(f"{name_stem(ref.name)}:{result['label']}")
