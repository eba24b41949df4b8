"""What the lean path does not implement, and handing such a call to botocore's client.

The lean calls cover what IRAS's per-image calls meet on AWS and on S3- and
SQS-compatible endpoints; botocore covers far more (access points, directory buckets,
finding a bucket's region by HEAD, lenient parsing). Where the lean path meets something
beyond it, it raises `Unsupported`, and the client makes the same call on botocore
(`iras.aws.boto`), which then answers or fails as a botocore caller would see it.

The boundary is whether the call may be made twice. `Unsupported.sent` says whether the
request may have reached the service: a call refused before sending (a bucket the lean
path cannot address) can always go to botocore; one whose answer could not be read may
already have had its effect, and goes to botocore only if doing it again is harmless
(reading or writing a whole object, deleting, receiving, changing visibility). Sending
messages is not: an unreadable answer to SendMessageBatch raises `UnreadableAnswer`,
which callers take as AWS being unavailable, rather than sending the messages again.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from botocore.exceptions import BotoCoreError

log = logging.getLogger(__name__)

F = TypeVar("F")

#: Reasons already logged at WARNING; later calls for the same reason log at DEBUG.
_logged: set[str] = set()
_MAX_LOGGED = 64


class UnreadableAnswer(BotoCoreError):  # type: ignore[misc]  # botocore is untyped
    """An answer came, but not in a form the call can read (a proxy's page, a truncated
    or foreign body): the service may or may not have acted on the request."""

    fmt = "The answer to {operation} could not be read: {reason}"


class Unsupported(Exception):
    """A call or an answer the lean path does not implement (`reason`, in words).

    `sent`: whether the request may have reached the service. `error`: what the call
    raises where it cannot be made on botocore (no fallback, or not safe to redo).
    """

    def __init__(self, reason: str, *, sent: bool, error: Exception) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent
        self.error = error


def fallback_for(fallback: F | None, unsupported: Unsupported, *, safe_to_redo: bool) -> F:
    """The botocore client to make the call on instead, or raise `unsupported.error`
    when there is none or the call may have had its effect and is not `safe_to_redo`."""
    if fallback is None or (unsupported.sent and not safe_to_redo):
        raise unsupported.error from unsupported
    first = unsupported.reason not in _logged
    if first and len(_logged) < _MAX_LOGGED:
        _logged.add(unsupported.reason)
    log.log(
        logging.WARNING if first else logging.DEBUG,
        "AWS call made on botocore instead of the lean path: %s",
        unsupported.reason,
    )
    return fallback
