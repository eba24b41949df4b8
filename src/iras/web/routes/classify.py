"""`POST /v1/classify`: one or many images in the field `files`, answered now or when done."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from iras.web.access import UploaderDep
from iras.web.deps import GatewayDep, SubmitterDep
from iras.web.lookup import job_json
from iras.web.routes.submitting import accept_images, wait_timeout
from iras.web.schemas import (
    JOB_LINKS,
    UPLOAD_ERRORS,
    WAIT_TIMEOUT,
    Job,
    error_responses,
    json_answer,
    multipart_upload,
    with_links,
)

router = APIRouter(prefix="/v1", tags=["classification"])


@router.post(
    "/classify",
    summary="Classify images (multipart field `files`, one or many)",
    openapi_extra={**multipart_upload("files", many=True), **with_links(JOB_LINKS)},
    response_model=Job,
    response_description="The job, accepted; with `?wait=true`, done and with every result.",
    responses=error_responses(
        {
            **UPLOAD_ERRORS,
            422: "`invalid_request`: a query parameter is not valid (`wait` is a boolean).",
            504: f"Only with `?wait=true`: {WAIT_TIMEOUT}",
        }
    ),
)
async def classify(
    request: Request,
    gateway: GatewayDep,
    submitter: SubmitterDep,
    caller: UploaderDep,
    wait: bool = Query(False, description="answer only once every image has its result"),
) -> JSONResponse:
    job = await accept_images(
        request,
        gateway,
        submitter,
        "files",
        max_files=gateway.settings.max_files_per_request,
        manifest=True,
        owner=caller,
    )
    if wait:
        timeout_s = gateway.settings.wait_timeout_s
        results = await asyncio.gather(
            *(gateway.book.wait_for(ref.request_id, timeout_s) for ref in job.requests)
        )
        for ref, result in zip(job.requests, results, strict=True):
            if result is None:
                raise wait_timeout(gateway, ref.request_id)
    return json_answer(job_json(job, with_results=wait))
