"""`POST /upload`: the CSE546 course workload generator's protocol.

One image in the multipart field `myfile`; the answer, once classified, is the plain text
`<name without extension>:<label>`. The generator sends a hundred of these at once and
waits for each, so the handler holds the request open until the result arrives, then
forgets the job: the result stays in the output bucket under its request id.

Such a job is stored without a manifest (one S3 call saved per upload), unless its wait
times out: the 504 tells the client to fetch the result by id, so the manifest, which
names its owner, is stored then, before answering.
"""

from __future__ import annotations

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

router = APIRouter(tags=["course protocol"])

_ANSWER = {
    "description": "The image's name without its extension, a colon, and its label.",
    "content": {"text/plain": {"schema": {"type": "string"}, "example": "test_00:goldfish"}},
}


@router.post(
    "/upload",
    response_class=PlainTextResponse,
    summary="Classify one image (multipart field `myfile`); answers `name:label`",
    openapi_extra=multipart_upload("myfile", many=False),
    responses={
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
    },
)
async def upload(
    request: Request, gateway: GatewayDep, submitter: SubmitterDep, caller: UploaderDep
) -> PlainTextResponse:
    return await course_upload(request, gateway, submitter, caller)


async def course_upload(
    request: Request, gateway: Gateway, submitter: Submitter, caller: str | None
) -> PlainTextResponse:
    """The course protocol's answer to one upload, whichever route it came by."""
    job = await accept_images(
        request, gateway, submitter, "myfile", max_files=1, manifest=False, owner=caller
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
