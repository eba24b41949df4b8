"""SQS's message calls (`MessageQueue`, JSON protocol) on `SignedHttp`; queue management
on botocore.

In SQS's JSON protocol a call is a POST of its parameters as JSON, named by the
`X-Amz-Target` header, and the answer is the result as JSON: the dictionaries botocore
would return, for the parameters IRAS passes (strings, integers, lists of them), are
the JSON itself. Errors name their code in `x-amzn-query-error` (the query protocol's
code, e.g. `AWS.SimpleQueueService.NonExistentQueue`, which botocore reports too) or
in the body's `__type`.
"""

from __future__ import annotations

import json
from typing import Any

from iras.aws.lean.signed_http import LeanClient, SignedHttp
from iras.aws.queues import SqsCalls

_CONTENT_TYPE = "application/x-amz-json-1.0"


class SqsMessages(LeanClient, SqsCalls):
    """`MessageQueue` on `SignedHttp`: each call one POST of its JSON (`SqsCalls` says which)."""

    def __init__(self, http: SignedHttp, endpoint_url: str) -> None:
        super().__init__(http)
        self._url = endpoint_url.rstrip("/") + "/"

    async def _request(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": _CONTENT_TYPE, "X-Amz-Target": f"AmazonSQS.{operation}"}
        body = json.dumps(params).encode()
        answer = await self._http.send(operation, "POST", self._url, headers, body, read_error)
        result = json.loads(answer.body) if answer.body else {}
        return result if isinstance(result, dict) else {}


def read_error(status: int, headers: dict[str, str], body: bytes) -> tuple[str, str]:
    query_error = headers.get("x-amzn-query-error", "")
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    code = query_error.split(";", 1)[0] or str(parsed.get("__type", "")).rpartition("#")[2]
    message = parsed.get("message") or parsed.get("Message") or ""
    return code or str(status), str(message)
