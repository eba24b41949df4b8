"""One signed AWS request on a plain HTTP session: sign, send, retry, fail like botocore;
and the base of the clients that make their calls this way."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from iras.aws.lean.http1 import Answer, ConnectFailed, ConnectTimedOut, Http1Client, HttpError
from iras.aws.lean.sigv4 import UNSIGNED_PAYLOAD, SigV4Signer, payload_hash
from iras.aws.retry import retry_while_away

#: HTTP answers worth another attempt (botocore's standard retry mode retries these too).
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
#: Error codes worth another attempt whatever their status (throttling, transient).
RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "RequestTimeout",
        "InternalError",
        "ThrottlingException",
        "Throttling",
        "RequestThrottled",
        "RequestLimitExceeded",
        "ServiceUnavailable",
    }
)

#: Reads a service's error answer: (status, headers, body) -> (code, message).
ErrorReader = Callable[[int, dict[str, str], bytes], tuple[str, str]]


class SignedHttp:
    """Signs requests for one service (`iras.aws.lean.sigv4`) and sends them on `http`."""

    def __init__(
        self,
        credentials: Any,
        http: Http1Client,
        service: str,
        region: str,
        max_attempts: int,
    ) -> None:
        self._credentials = credentials  # botocore's (refreshable) credentials, or None
        self._http = http
        self._service = service
        self._signer = SigV4Signer(service, region)
        self._max_attempts = max(1, max_attempts)
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
    ) -> Answer:
        """Make the call, retrying transient failures (`max_attempts` calls in all, a
        first retry after 0.1-0.2 s); raise botocore's exception types."""

        async def once() -> Answer:
            try:
                signed = await self._sign(method, url, headers, body)
                answer = await self._http.request(method, url, signed, body)
            except (HttpError, OSError) as error:
                raise connection_error(url, error) from error
            if answer.status >= 300:
                code, message = read_error(answer.status, answer.headers, answer.body)
                raise ClientError(
                    {
                        "Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": answer.status},
                    },
                    operation,
                )
            return answer

        return await retry_while_away(
            once,
            on=self._retryable,
            attempts=self._max_attempts,
            wait_initial_s=0.1,
            wait_max_s=2.0,
        )

    def _retryable(self, failure: Exception) -> bool:
        """What botocore's standard mode retries: a transient answer, a connection lost,
        a failed connect (unless `retry_unreachable` is off)."""
        if isinstance(failure, ClientError):
            code = failure.response["Error"]["Code"]
            status = failure.response["ResponseMetadata"]["HTTPStatusCode"]
            return status in RETRYABLE_STATUS or code in RETRYABLE_CODES
        if isinstance(failure, BotoConnectionError):
            return self.retry_unreachable
        return isinstance(failure, ReadTimeoutError | ConnectionClosedError)

    async def _sign(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> dict[str, str]:
        if self._credentials is None:  # botocore fails the same way, at the call
            raise NoCredentialsError()
        credentials = await self._credentials.get_frozen_credentials()
        # S3 bodies go unhashed (UNSIGNED-PAYLOAD, as botocore sends over HTTPS): a pass
        # over every image for nothing TLS does not already guard.
        content_hash = UNSIGNED_PAYLOAD if self._service == "s3" else payload_hash(body)
        return self._signer.sign(
            method,
            url,
            headers,
            content_hash,
            credentials.access_key,
            credentials.secret_key,
            credentials.token,
            datetime.datetime.now(datetime.UTC),
        )


class LeanClient:
    """The base of the clients that make their calls on `SignedHttp` (`S3Objects`,
    `SqsMessages`): it holds the switch that makes them fail fast."""

    def __init__(self, http: SignedHttp) -> None:
        self._http = http

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
