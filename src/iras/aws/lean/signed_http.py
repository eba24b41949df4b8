"""One signed AWS request on a plain HTTP session: sign, send, retry, fail like botocore;
and the base of the clients that make their calls this way."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.model import ServiceModel
from botocore.retries.quota import RetryQuota
from botocore.retries.standard import ExponentialBackoff

from iras.aws.lean.http1 import Answer, ConnectFailed, ConnectTimedOut, Http1Client, HttpError
from iras.aws.lean.retries import CallContext, StandardRetries
from iras.aws.lean.sigv4 import UNSIGNED_PAYLOAD, SigV4Signer, payload_hash

#: Reads a service's error answer: (status, headers, body) -> botocore's "Error" dict,
#: with at least "Code" and "Message".
ErrorReader = Callable[[int, dict[str, str], bytes], dict[str, str]]

F = TypeVar("F")


class SignedHttp:
    """Signs requests for one service (`iras.aws.lean.sigv4`), in its region or another,
    sends them on `http`, and retries as botocore's standard mode does
    (`iras.aws.lean.retries`, with `quota` and `backoff` botocore's defaults unless
    given; `sleep` is how it waits, which tests replace)."""

    def __init__(
        self,
        credentials: Any,
        http: Http1Client,
        service_model: ServiceModel,
        region: str,
        max_attempts: int,
        *,
        quota: RetryQuota | None = None,
        backoff: ExponentialBackoff | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._credentials = credentials  # botocore's (refreshable) credentials, or None
        self._http = http
        self._service = service_model.signing_name
        self._region = region
        self._signers = {region: SigV4Signer(self._service, region)}
        self.retries = StandardRetries(service_model, max_attempts, quota=quota, backoff=backoff)
        self._sleep = sleep
        #: False: a connect that fails (refused, timed out) raises at once instead of
        #: being retried, for callers with a better answer than waiting (see aws_errors).
        self.retry_unreachable = True

    async def send(
        self,
        operation: str,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        read_error: ErrorReader,
        *,
        region: str | None = None,
    ) -> Answer:
        """Make the call, signed for `region` (None: the client's), retrying what
        botocore's standard mode retries; raise botocore's exception types."""
        context: CallContext = {}
        attempts = 0
        while True:
            attempts += 1
            answer, caught = await self._attempt(method, url, headers, body, region)
            if answer is not None and answer.status < 300:
                self.retries.succeeded(context, answer)
                return answer
            if isinstance(caught, BotoConnectionError) and not self.retry_unreachable:
                raise caught
            error_response = None
            if answer is not None:
                error_response = {
                    "Error": read_error(answer.status, answer.headers, answer.body),
                    "ResponseMetadata": {
                        "HTTPStatusCode": answer.status,
                        "HTTPHeaders": answer.headers,
                        "RetryAttempts": attempts - 1,
                    },
                }
            delay_s = self.retries.delay_s(
                operation,
                attempts,
                context,
                answer=answer,
                error_response=error_response,
                caught=caught,
            )
            if delay_s is None:
                if error_response is not None:
                    raise ClientError(error_response, operation)
                assert caught is not None
                raise caught
            await self._sleep(delay_s)

    async def _attempt(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, region: str | None
    ) -> tuple[Answer | None, Exception | None]:
        """One attempt: its answer, or what a botocore caller sees when none came."""
        try:
            signed = await self._sign(method, url, headers, body, region or self._region)
            return await self._http.request(method, url, signed, body), None
        except (HttpError, OSError) as error:
            failure = connection_error(url, error)
            failure.__cause__ = error
            return None, failure

    async def _sign(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, region: str
    ) -> dict[str, str]:
        if self._credentials is None:  # botocore fails the same way, at the call
            raise NoCredentialsError()
        credentials = await self._credentials.get_frozen_credentials()
        # S3 bodies go unhashed (UNSIGNED-PAYLOAD, as botocore sends over HTTPS): a pass
        # over every image for nothing TLS does not already guard.
        content_hash = UNSIGNED_PAYLOAD if self._service == "s3" else payload_hash(body)
        signer = self._signers.get(region)
        if signer is None:  # a bucket in another region (S3's redirect): one signer each
            signer = self._signers[region] = SigV4Signer(self._service, region)
        return signer.sign(
            method,
            url,
            headers,
            content_hash,
            credentials.access_key,
            credentials.secret_key,
            credentials.token,
            datetime.datetime.now(datetime.UTC),
        )


class LeanClient(Generic[F]):
    """The base of the clients that make their calls on `SignedHttp` (`S3Objects`,
    `SqsMessages`): it holds the switch that makes them fail fast, and `fallback`, the
    same interface on botocore for what the lean path does not implement
    (`iras.aws.lean.fallback`; None: raise instead)."""

    def __init__(self, http: SignedHttp, fallback: F | None = None) -> None:
        self._http = http
        self.fallback = fallback

    @property
    def retry_unreachable(self) -> bool:
        """Whether a failed connect is retried (True) or raised at once."""
        return self._http.retry_unreachable

    @retry_unreachable.setter
    def retry_unreachable(self, retry: bool) -> None:
        self._http.retry_unreachable = retry


def connection_error(url: str, error: BaseException) -> Exception:
    """The botocore exception a botocore caller would have seen for `error`: could not
    connect (a `botocore.exceptions.ConnectionError`), or lost the connection after."""
    failure: Exception
    if isinstance(error, ConnectTimedOut):  # a subclass of the next: first
        failure = ConnectTimeoutError(endpoint_url=url, error=error)
    elif isinstance(error, ConnectFailed):
        failure = EndpointConnectionError(endpoint_url=url, error=error)
    elif isinstance(error, TimeoutError):
        failure = ReadTimeoutError(endpoint_url=url, error=error)
    else:  # a pooled connection the server closed, a reset mid-answer
        failure = ConnectionClosedError(endpoint_url=url, error=error)
    return failure
