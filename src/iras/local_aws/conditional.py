"""S3's conditional writes made atomic in the embedded AWS, as they are in S3.

moto checks `If-None-Match: *` and `If-Match` on PutObject (and If-Match on
DeleteObject) by looking the key up and then writing it, and its server answers
requests on many threads: two gateways taking the scaler's lease at the same moment
could both be told they won. S3 decides such writes atomically (one succeeds, the other
gets 412 or 409), and `iras.scaler.lease` relies on it. `ConditionalWrites` answers
every conditional object write under one lock, so moto's check and write happen as one
step; they are a few calls a second, and nothing else waits for the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from iras.local_aws.dispatch import Environ, StartResponse, WsgiApp

_CONDITIONS = ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH")


class ConditionalWrites:
    """WSGI: conditional PUTs and DELETEs one at a time, everything else straight through."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in {"PUT", "DELETE"} or not any(
            key in environ for key in _CONDITIONS
        ):
            return self._app(environ, start_response)
        with self._lock:  # the whole answer inside: moto writes while it is produced
            return list(self._app(environ, start_response))
