"""The embedded AWS's WSGI front: a shorter way to S3, SQS, EC2 and Auto Scaling, and a
count of calls.

moto's `DomainDispatcherApplication` finds the service of every request the long way:
under one global lock it lists moto's ~200 package folders on disk (an `isdir` each)
and matches the host against every service's URL patterns, about 10% of a call's CPU.
IRAS signs every request, and the SigV4 credential scope names the service, so for the
services IRAS uses the answer is a dictionary lookup; anything else (the
`/moto-api` endpoints, unsigned calls, other services) still goes the long way.

It also counts the calls by service and action, which is how calls per image are
measured and held down: `GET /_iras/calls` answers the counts as JSON. (No S3 bucket
name starts with `_`, so the path can never shadow a bucket.)
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

#: WSGI's types, loosely: moto and werkzeug are untyped here.
Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

#: Path that answers the call counts.
CALLS_PATH = "/_iras/calls"

#: Services served through the short way (their moto backend has the same name).
FAST_SERVICES = frozenset({"s3", "sqs", "ec2", "autoscaling"})

#: S3 operations by method, for a request that names an object (a key) or only a bucket.
_S3_OBJECT_OPS = {
    "GET": "GetObject",
    "PUT": "PutObject",
    "HEAD": "HeadObject",
    "DELETE": "DeleteObject",
    "POST": "PostObject",
}
_S3_BUCKET_OPS = {
    "GET": "ListObjects",
    "PUT": "CreateBucket",
    "HEAD": "HeadBucket",
    "DELETE": "DeleteBucket",
    "POST": "PostBucket",
}


def signing_service(environ: Environ) -> str | None:
    """The service a SigV4-signed request is for, from its credential scope; else None."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    # "AWS4-HMAC-SHA256 Credential=KEY/20240101/us-east-1/sqs/aws4_request, SignedHeaders=..."
    start = auth.find("Credential=")
    if start < 0:
        return None
    scope = auth[start + len("Credential=") :].split(",", 1)[0].split("/")
    return scope[3].lower() if len(scope) == 5 else None


def call_name(service: str | None, environ: Environ) -> str:
    """`service:Action` for the call counter; reads nothing that moto reads after it."""
    if service == "sqs":
        target = environ.get("HTTP_X_AMZ_TARGET", "")  # "AmazonSQS.SendMessageBatch"
        return f"sqs:{target.rpartition('.')[2] or 'query'}"
    if service == "s3":
        method = environ.get("REQUEST_METHOD", "GET")
        has_key = "/" in environ.get("PATH_INFO", "").strip("/")
        query = environ.get("QUERY_STRING", "")
        if query and not has_key:
            return f"s3:{method} ?{query.split('=', 1)[0].split('&', 1)[0]}"
        ops = _S3_OBJECT_OPS if has_key else _S3_BUCKET_OPS
        return f"s3:{ops.get(method, method)}"
    if service in ("ec2", "autoscaling"):  # query protocol: the action is in the form
        return f"{service}:{_form_action(environ) or 'unknown'}"
    return f"{service or 'other'}:{environ.get('REQUEST_METHOD', '')}"


def _form_action(environ: Environ) -> str | None:
    """The `Action` of a query-protocol request, from the body moto also reads (kept)."""
    import io

    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not length:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    actions = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return actions[0] if actions else None


class CallCounter:
    """Calls by `service:Action`, safe to bump from the server's request threads."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))


class FastDispatch:
    """Route signed S3/SQS/EC2 requests straight to moto's app for that service.

    `create_app(service)` builds moto's Flask app of one backend (moto's
    `create_backend_app`); `fallback` is moto's own dispatcher, for everything else.
    """

    def __init__(self, create_app: Callable[[str], WsgiApp], fallback: WsgiApp) -> None:
        self._create_app = create_app
        self._fallback = fallback
        self._apps: dict[str, WsgiApp] = {}
        self._lock = threading.Lock()
        self.calls = CallCounter()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == CALLS_PATH:
            return self._answer_calls(start_response)
        service = signing_service(environ)
        self.calls.add(call_name(service, environ))
        if service in FAST_SERVICES and not _s3_control(service, environ):
            return self.service_app(service)(environ, start_response)
        return self._fallback(environ, start_response)

    def service_app(self, service: str) -> WsgiApp:
        """The app that answers `service`'s signed calls, built on first use."""
        app = self._apps.get(service)
        if app is None:
            with self._lock:  # Flask app creation is not thread-safe; once per service
                app = self._apps.get(service) or self._create_app(service)
                self._apps[service] = app
        return app

    def _answer_calls(self, start_response: StartResponse) -> list[bytes]:
        body = json.dumps(self.calls.snapshot()).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]


def _s3_control(service: str, environ: Environ) -> bool:
    """S3 Control signs as `s3` but is another backend: leave it to moto's dispatcher."""
    return service == "s3" and (
        environ.get("PATH_INFO", "").startswith("/v20180820/")
        or "s3-control" in environ.get("HTTP_HOST", "")
    )
