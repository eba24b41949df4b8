"""Shared by the upload routes: read and check the images, submit them, map failures."""

from __future__ import annotations

from fastapi import Request

from iras.web.deps import RETRY_AFTER_S
from iras.web.errors import ApiError
from iras.web.gateway import Gateway
from iras.web.jobs import Job
from iras.web.submit import AwsUnavailable, Submitter
from iras.web.uploads import read_images
from iras.web.validation import UploadRejected


async def accept_images(
    request: Request,
    gateway: Gateway,
    submitter: Submitter,
    field: str,
    *,
    max_files: int,
    manifest: bool,
    owner: str | None,
) -> Job:
    """Read field `field`, validate every image, then store and queue them all as one job.

    Nothing is stored unless every image passes: a request is accepted whole or refused.
    """
    settings = gateway.settings
    try:
        images = await read_images(
            request,
            field,
            max_files=max_files,
            max_file_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
        )
    except UploadRejected as rejected:
        gateway.metrics.uploads_rejected.labels(rejected.code).inc()
        raise
    except ApiError as error:
        gateway.metrics.uploads_rejected.labels(error.code).inc()
        raise
    try:
        return await submitter.submit(images, owner, manifest=manifest)
    except AwsUnavailable as error:
        gateway.metrics.uploads_rejected.labels("aws_unavailable").inc()
        raise ApiError(
            503,
            "aws_unavailable",
            f"{error}; nothing was accepted, retry in {RETRY_AFTER_S} s",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None


def wait_timeout(gateway: Gateway, request_id: str) -> ApiError:
    """The 504 for a waiting request whose result has not come in time (it still will)."""
    gateway.metrics.wait_timeouts.inc()
    return ApiError(
        504,
        "result_timeout",
        f"no result within {gateway.settings.wait_timeout_s:g} s (IRAS_WAIT_TIMEOUT_S); the "
        f"request is still queued: GET /v1/results/{request_id} later",
    )
