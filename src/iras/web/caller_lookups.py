"""Lookups made for an API caller: on the lookups' own budget, charged to the caller.

Every lookup a route makes goes through here, so that each costs its client what it cost
S3 (one rate-limit token per S3 call, `iras.web.access.charge_calls`) and none can wait
on S3 for ever: past `IRAS_AWS_DEADLINE_S`, or when S3 fails, the answer is 503 with
Retry-After (a fetch shared with other callers goes on for them, and for the cache).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import HTTPConnection

from iras.aws.errors import AWS_ERRORS
from iras.web.access import charge_calls
from iras.web.api_keys import may_see
from iras.web.deps import RETRY_AFTER_S
from iras.web.errors import ApiError
from iras.web.fleet_models import FleetModels
from iras.web.gateway import Gateway
from iras.web.jobs import Job
from iras.web.lookup import Lookups, Meter, ResultJson, find_job, find_result

#: What a lookup route answers when the output bucket fails it, for its `responses`.
LOOKUP_UNAVAILABLE = (
    "`aws_unavailable`: the output bucket did not answer within IRAS_AWS_DEADLINE_S (or "
    "failed); retry after Retry-After seconds."
)


def lookups_of(connection: HTTPConnection) -> Lookups:
    """The app's lookups (opened in its lifespan, `iras.web.app`)."""
    lookups: Lookups = connection.app.state.lookups
    return lookups


async def lookup_job(
    connection: HTTPConnection,
    gateway: Gateway,
    job_id: str,
    *,
    caller: str | None,
    with_results: bool = True,
) -> Job | None:
    """`find_job` for `caller`, the caller of `connection` (see the module's docstring);
    None too for a job it may not see, whose results are then not fetched: probing
    another key's job costs one GET, its manifest."""
    async with _charged(connection, gateway) as meter:
        lookups = lookups_of(connection)

        async def find(with_results: bool) -> Job | None:
            return await find_job(
                gateway.settings,
                gateway.aws,
                gateway.book,
                job_id,
                lookups=lookups,
                meter=meter,
                with_results=with_results,
            )

        job = await find(with_results=False)  # the manifest: whose it is
        if job is None or not may_see(job.owner, caller):
            return None
        return await find(with_results=True) if with_results else job


async def lookup_result(
    connection: HTTPConnection, gateway: Gateway, request_id: str
) -> ResultJson | None:
    """`find_result` for the caller of `connection` (see the module's docstring)."""
    async with _charged(connection, gateway) as meter:
        return await find_result(
            gateway.settings,
            gateway.aws,
            gateway.book,
            request_id,
            lookups=lookups_of(connection),
            meter=meter,
        )


async def lookup_models(connection: HTTPConnection, gateway: Gateway) -> list[ResultJson]:
    """The fleet's model records (`iras.web.fleet_models`) for the caller of `connection`:
    charged the S3 calls of a read it caused, nothing when the listing was fresh."""
    fleet: FleetModels = connection.app.state.fleet_models
    async with _charged(connection, gateway) as meter:
        return await fleet.records(lookups_of(connection), meter)


@asynccontextmanager
async def _charged(connection: HTTPConnection, gateway: Gateway) -> AsyncIterator[Meter]:
    """A meter for the block's S3 calls, charged to the caller however the block ends; the
    block bounded by the AWS deadline, its failures answered 503."""
    meter = Meter()
    deadline_s = gateway.settings.aws_deadline_s
    deadline = asyncio.timeout(deadline_s)
    try:
        async with deadline:
            yield meter
    except AWS_ERRORS as error:
        why = f"not within {deadline_s:g} s (IRAS_AWS_DEADLINE_S)" if deadline.expired() else error
        raise ApiError(
            503,
            "aws_unavailable",
            f"the output bucket did not answer the lookup ({why}); retry in {RETRY_AFTER_S} s",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None
    finally:
        charge_calls(connection, meter.calls)
