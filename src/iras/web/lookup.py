"""Find results and jobs: in the gateway's memory first, then in the output bucket.

The bucket is what makes a result outlive the gateway that asked for it: after a restart
(or for a job the book has forgotten) the manifest and the per-request results are read
back from S3.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from botocore.exceptions import ClientError

from iras.aws import AwsClients
from iras.config import Settings
from iras.messages import job_key, result_key
from iras.web.jobs import Job, JobBook, RequestRef

ResultJson = dict[str, Any]

_MISSING = {"NoSuchKey", "404", "NotFound"}


async def find_result(
    settings: Settings, aws: AwsClients, book: JobBook, request_id: str
) -> ResultJson | None:
    return book.result(request_id) or await stored_result(settings, aws, request_id)


async def stored_result(settings: Settings, aws: AwsClients, request_id: str) -> ResultJson | None:
    return await _read_json(aws, settings.output_bucket, result_key(settings, request_id))


async def find_job(settings: Settings, aws: AwsClients, book: JobBook, job_id: str) -> Job | None:
    """The job from memory, or rebuilt from its manifest and stored results."""
    job = book.job(job_id)
    if job is not None:
        return job
    manifest = await _read_json(aws, settings.output_bucket, job_key(job_id))
    if manifest is None:
        return None
    refs = [RequestRef(r["request_id"], r["name"]) for r in manifest.get("requests", [])]
    job = Job(job_id, refs, created_at=0.0, owner=manifest.get("owner"))
    await refresh_from_storage(settings, aws, job)
    return job


async def refresh_from_storage(settings: Settings, aws: AwsClients, job: Job) -> None:
    """Add to `job` the results that have reached the output bucket since last looked."""
    missing = [ref.request_id for ref in job.requests if ref.request_id not in job.results]
    found = await asyncio.gather(*(stored_result(settings, aws, rid) for rid in missing))
    for request_id, result in zip(missing, found, strict=True):
        if result is not None:
            job.results[request_id] = result


def job_json(job: Job, *, with_results: bool = True) -> dict[str, Any]:
    """The contract's job shape: id, requests (each with its result when there is one), counts."""
    requests = []
    for ref in job.requests:
        entry: dict[str, Any] = {"request_id": ref.request_id, "name": ref.name}
        result = job.results.get(ref.request_id)
        if with_results and result is not None:
            entry["result"] = result
        requests.append(entry)
    return {
        "job_id": job.job_id,
        "status": "done" if job.done else "pending",
        "total": len(job.requests),
        "done": len(job.results),
        "requests": requests,
        "links": {"self": f"/v1/jobs/{job.job_id}", "ws": f"/v1/jobs/{job.job_id}/ws"},
    }


async def _read_json(aws: AwsClients, bucket: str, key: str) -> ResultJson | None:
    try:
        data = json.loads(await aws.objects.get(bucket, key))
    except ClientError as error:
        if error.response["Error"]["Code"] in _MISSING:
            return None
        raise
    return data if isinstance(data, dict) else None
