"""The lean calls retry as botocore's standard mode does, from botocore's own tables: every
code it retries, its retry quota, and its backoff's 20 s cap."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.retries.quota import RetryQuota
from botocore.retries.standard import (
    ExponentialBackoff,
    ThrottledRetryableChecker,
    TransientRetryableChecker,
)

from iras.aws.lean import Endpoint, S3Objects
from iras.aws.lean.http1 import Http1Client
from tests.aws.lean.scripted import Script, ok, s3_error, signed_http

#: What botocore's standard mode retries whatever the status: read from botocore itself.
BOTOCORE_RETRIED_CODES = sorted(
    set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)
    | set(TransientRetryableChecker._TRANSIENT_ERROR_CODES)
)


def s3_on(url: str, http: Http1Client, attempts: int = 3, **options: object) -> S3Objects:
    return S3Objects(signed_http(http, "s3", attempts, **options), Endpoint(url, path_style=True))


@pytest.mark.parametrize("code", BOTOCORE_RETRIED_CODES)
async def test_every_code_botocore_retries_is_retried(
    scripted: tuple[str, Script, list[str]], http_session: Http1Client, code: str
) -> None:
    """A 400 with the code (the status alone would not be retried): one retry, then the
    call succeeds. The lean path once knew 8 of these codes, copied by hand."""
    url, script, seen = scripted
    script += [s3_error(400, code), ok]
    await s3_on(url, http_session).put("b-1", "k", b"x")
    assert seen == ["PUT", "PUT"]


async def test_a_client_error_botocore_does_not_retry_is_not_retried(
    scripted: tuple[str, Script, list[str]], http_session: Http1Client
) -> None:
    url, script, seen = scripted
    script += [s3_error(400, "InvalidArgument")]
    with pytest.raises(ClientError) as refused:
        await s3_on(url, http_session).put("b-1", "k", b"x")
    assert refused.value.response["Error"]["Code"] == "InvalidArgument"
    assert seen == ["PUT"]


async def test_backoff_doubles_up_to_botocores_20_s_cap(
    scripted: tuple[str, Script, list[str]], http_session: Http1Client
) -> None:
    """With the random draw at its top, the waits are 1, 2, 4, 8, 16, then 20 s (the cap
    was 2 s before: a throttled S3 was hammered at 2 s intervals)."""
    url, script, seen = scripted
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    script += [s3_error(503, "SlowDown")] * 7 + [ok]
    backoff = ExponentialBackoff(random=lambda: 1.0)
    await s3_on(url, http_session, attempts=8, sleep=sleep, backoff=backoff).get("b-1", "k")
    assert waits == [1, 2, 4, 8, 16, 20, 20]
    assert len(seen) == 8


async def test_the_retry_quota_stops_retries_and_successes_refill_it(
    scripted: tuple[str, Script, list[str]], http_session: Http1Client
) -> None:
    """botocore's quota: a retry costs 5 units, a success gives back what its call took
    (or 1). With 10 units, a failing endpoint gets two retries, not the 4 the attempts
    allow, and the answer says why it stopped."""
    url, script, seen = scripted
    quota = RetryQuota(initial_capacity=10)
    s3 = s3_on(url, http_session, attempts=5, quota=quota)
    script += [s3_error(503, "SlowDown")] * 3
    with pytest.raises(ClientError) as stopped:
        await s3.get("b-1", "k")
    assert len(seen) == 3
    assert stopped.value.response["ResponseMetadata"].get("RetryQuotaReached") is True
    assert quota.available_capacity == 0

    script += [s3_error(503, "SlowDown")]  # no units left: not retried at all
    with pytest.raises(ClientError):
        await s3.get("b-1", "k")
    assert len(seen) == 4

    script += [ok] * 5  # each success gives one unit back
    for _ in range(5):
        await s3.get("b-1", "k")
    assert quota.available_capacity == 5
    script += [s3_error(503, "SlowDown"), ok]  # enough for one retry again
    await s3.get("b-1", "k")
    assert len(seen) == 11


async def test_exhausted_attempts_say_so_as_botocore_does(
    scripted: tuple[str, Script, list[str]], http_session: Http1Client
) -> None:
    url, script, seen = scripted
    script += [s3_error(500, "InternalError")] * 2
    with pytest.raises(ClientError) as exhausted:
        await s3_on(url, http_session, attempts=2).get("b-1", "k")
    metadata = exhausted.value.response["ResponseMetadata"]
    assert metadata.get("MaxAttemptsReached") is True and metadata["RetryAttempts"] == 1
    assert seen == ["GET", "GET"]
