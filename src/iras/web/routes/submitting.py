"""Shared by the upload routes: read and check the images, submit them, map failures."""

from __future__ import annotations

import asyncio
import logging

from fastapi import Request

from iras.aws.errors import AWS_ERRORS
from iras.telemetry.log_context import bind_log_context
from iras.web.access import client_of
from iras.web.deps import RETRY_AFTER_S
from iras.web.errors import ApiError
from iras.web.gateway import Gateway
from iras.web.jobs import Job, TooManyJobs
from iras.web.submit import AwsUnavailable, Submitter
from iras.web.uploads import read_images
from iras.web.validation import UploadRejected

log = logging.getLogger(__name__)


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
        job = await submitter.submit(images, owner, manifest=manifest, client=client_of(request))
        bind_job_log_context(job)  # this request's lines from here on, its access line too
        return job
    except TooManyJobs as refused:
        gateway.metrics.uploads_rejected.labels("too_many_jobs").inc()
        raise ApiError(
            429,
            "too_many_jobs",
            refused.detail,
            headers={"Retry-After": str(refused.retry_after_s)},
        ) from None
    except AwsUnavailable as error:
        gateway.metrics.uploads_rejected.labels("aws_unavailable").inc()
        raise ApiError(
            503,
            "aws_unavailable",
            f"{error}; nothing was accepted, retry in {RETRY_AFTER_S} s",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None
    finally:  # stored and queued, or refused: its files and its share of the upload budget go
        await images.close()


def bind_job_log_context(job: Job) -> None:
    """The job's id, and its request's when it has one only, on the lines that follow."""
    only = job.requests[0].request_id if len(job.requests) == 1 else None
    bind_log_context(job_id=job.job_id, request_id=only)


def wait_timeout(gateway: Gateway, request_id: str) -> ApiError:
    """The 504 for a waiting request whose result has not come in time (it still will)."""
    gateway.metrics.wait_timeouts.inc()
    return ApiError(
        504,
        "result_timeout",
        f"no result within {gateway.settings.wait_timeout_s:g} s (IRAS_WAIT_TIMEOUT_S); the "
        f"request is still queued: GET /v1/results/{request_id} later",
    )


async def wait_timeout_without_manifest(
    gateway: Gateway, submitter: Submitter, job: Job, request_id: str
) -> ApiError:
    """The 504 for a waiting request of a job stored without a manifest (a course upload).

    Its advice, GET /v1/results/{id}, needs the manifest when API keys are on: the result
    is shown only to the key its job's manifest names, on any gateway or after a restart.
    So the manifest is stored now, on this rare path, which keeps the happy path at no
    manifest at all. When even that fails, the advice says what still holds.
    """
    try:
        async with asyncio.timeout(gateway.settings.aws_deadline_s):
            await submitter.store_manifest(job)
    except AWS_ERRORS as error:
        log.warning("the manifest of timed-out job %s was not stored: %r", job.job_id, error)
        gateway.metrics.wait_timeouts.inc()
        return ApiError(
            504,
            "result_timeout",
            f"no result within {gateway.settings.wait_timeout_s:g} s (IRAS_WAIT_TIMEOUT_S); "
            "the request is still queued, but the gateway could not record whose it is: "
            f"GET /v1/results/{request_id} from this gateway within IRAS_JOB_TTL_S, or upload "
            "the image again",
        )
    return wait_timeout(gateway, request_id)
