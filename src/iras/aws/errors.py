"""What an AWS call raises when AWS is away, and not waiting for an endpoint that refuses.

`AWS_ERRORS` is the one tuple that loops and request handlers catch around AWS calls:
botocore's own errors (`ClientError` for an HTTP error answer, `BotoCoreError` for
connection trouble), plus what may escape beneath them while a connection is cut: a
botocore answer's body streamed over aiohttp raises aiohttp's errors, and a deadline
raises `TimeoutError` (an `OSError`, as are socket errors).

`fail_fast_when_unreachable` is for callers that have a better answer than waiting: the
gateway answers an upload 503 with Retry-After at once when the endpoint refuses
connections, instead of sleeping through botocore's retries (measured: 7 to 16 s before
botocore gives up on a closed port with five attempts).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from iras.aws.boto import BotocoreBacked
from iras.aws.lean import LeanClient
from iras.aws.types import BotocoreClient, MessageQueue, ObjectStore

#: What an AWS call raises when no answer came from AWS (as opposed to a refusal in one).
UNREACHABLE: tuple[type[Exception], ...] = (BotoCoreError, aiohttp.ClientError, OSError)
#: Everything an AWS call may raise while AWS is unreachable, slow or refusing.
AWS_ERRORS: tuple[type[Exception], ...] = (*UNREACHABLE, ClientError)


def fail_fast_when_unreachable(*clients: ObjectStore | MessageQueue | BotocoreClient) -> None:
    """Make `clients` raise at once when they cannot connect, instead of retrying.

    botocore retries a failed connect (refused, timed out, no route) like any transient
    error, with sleeps of up to 2^attempt seconds. A caller with its own plan (answer
    503 now, or back off in its own loop) is better served by the error itself. Other
    errors, such as a pooled connection the server closed, are still retried as before.
    The lean path's clients have a switch for the same; botocore's, and the
    implementations made on them, get a `needs-retry` handler.
    """
    for client in clients:
        if isinstance(client, LeanClient):
            client.retry_unreachable = False
            if client.fallback is not None:  # the botocore client it hands calls to
                fail_fast_when_unreachable(client.fallback)
            continue
        botocore_client: BotocoreClient = (
            client.client if isinstance(client, BotocoreBacked) else client
        )
        service = botocore_client.meta.service_model.service_id.hyphenize()
        botocore_client.meta.events.register_first(
            f"needs-retry.{service}", _raise_when_unreachable, unique_id=f"iras-fail-fast-{service}"
        )


def _raise_when_unreachable(caught_exception: Exception | None = None, **_: Any) -> None:
    """A `needs-retry` handler: returning None leaves the decision to botocore's retry
    handler, raising ends the call with the connection error it caught."""
    if isinstance(caught_exception, BotoConnectionError):
        raise caught_exception
