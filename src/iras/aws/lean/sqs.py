"""SQS's message calls (`MessageQueue`, JSON protocol) on `SignedHttp`; queue management
on botocore.

In SQS's JSON protocol a call is a POST of its parameters as JSON, named by the
`X-Amz-Target` header, and the answer is the result as JSON: the dictionaries botocore
would return, for the parameters IRAS passes (strings, integers, lists of them), are
the JSON itself. Errors name their code in `x-amzn-query-error` (the query protocol's
code, e.g. `AWS.SimpleQueueService.NonExistentQueue`, which botocore reports too) or
in the body's `__type`.

An answer that is not the JSON object it should be (a proxy's page, a truncated body)
goes to the botocore client, `fallback`, for every call but SendMessageBatch: sending
again could queue the messages twice, so that one raises `UnreadableAnswer`, which
callers take as AWS being unavailable (`iras.aws.lean.fallback`).
"""

from __future__ import annotations

import json
from typing import Any

from iras.aws.lean.fallback import UnreadableAnswer, Unsupported, fallback_for
from iras.aws.lean.signed_http import LeanClient, SignedHttp
from iras.aws.queues import SqsCalls

_CONTENT_TYPE = "application/x-amz-json-1.0"


#: Calls that must not be made twice for one answer that could not be read.
_NOT_SAFE_TO_REDO = frozenset({"SendMessageBatch", "SendMessage"})


class SqsMessages(LeanClient[SqsCalls], SqsCalls):
    """`MessageQueue` on `SignedHttp`: each call one POST of its JSON (`SqsCalls` says
    which); `fallback`, the same calls on botocore."""

    def __init__(
        self, http: SignedHttp, endpoint_url: str, fallback: SqsCalls | None = None
    ) -> None:
        super().__init__(http, fallback)
        self._url = endpoint_url.rstrip("/") + "/"

    async def _request(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self._lean_request(operation, params)
        except Unsupported as unsupported:
            safe = operation not in _NOT_SAFE_TO_REDO
            other = fallback_for(self.fallback, unsupported, safe_to_redo=safe)
            return await other._request(operation, params)

    async def _lean_request(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": _CONTENT_TYPE, "X-Amz-Target": f"AmazonSQS.{operation}"}
        body = json.dumps(params).encode()
        answer = await self._http.send(operation, "POST", self._url, headers, body, read_error)
        try:
            result = json.loads(answer.body) if answer.body else {}
        except ValueError as error:
            result = error
        if not isinstance(result, dict):
            raise Unsupported(
                f"an answer to {operation} it could not read",
                sent=True,
                error=UnreadableAnswer(operation=operation, reason="not a JSON object"),
            )
        return result


def read_error(status: int, headers: dict[str, str], body: bytes) -> dict[str, str]:
    query_error = headers.get("x-amzn-query-error", "")
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    code = query_error.split(";", 1)[0] or str(parsed.get("__type", "")).rpartition("#")[2]
    message = parsed.get("message") or parsed.get("Message") or ""
    return {"Code": code or str(status), "Message": str(message)}
