"""HTTP/1.1 keep-alive for moto's WSGI app: one connection carries many AWS calls.

werkzeug's development server (what moto's server mode runs on) closes the connection
after every response, because its handler cannot tell where a request's body ends. So
every AWS call from IRAS cost a TCP connect, a new server thread, and a fresh connection
in the client's pool, on both sides of the wire. This handler reads each body exactly
(Content-Length, or chunked), so the next request on the connection starts where it
should, and answers with a Content-Length, so the client can reuse the connection.

Everything else is moto's own handler (`MotoRequestHandler`: it keeps header names with
underscores, which S3 metadata needs) on werkzeug's threaded server.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import DechunkedInput

log = logging.getLogger(__name__)

#: Statuses that never carry a body (and so no Content-Length is added).
_NO_BODY_STATUSES = frozenset({204, 304})
#: Response headers this handler decides itself.
_HOP_BY_HOP = frozenset({"connection", "transfer-encoding", "keep-alive"})


class KeepAliveHandler(MotoRequestHandler):
    """Serve WSGI requests one after another on a persistent connection."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # header and body go out in one write anyway

    def run_wsgi(self) -> None:
        # (An "Expect: 100-continue" was answered by http.server's parse_request.)
        environ = self.make_environ()
        self.environ = environ
        body = _read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("wsgi.input_terminated", None)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        status, headers, payload = self._call_app(environ)
        self._respond(environ["REQUEST_METHOD"], status, headers, payload)

    def _call_app(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        started: list[tuple[str, list[tuple[str, str]]]] = []
        chunks: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            started[:] = [(status, headers)]
            return chunks.append

        app: Callable[..., Iterable[bytes]] = self.server.app
        try:
            result = app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            log.exception("the embedded AWS failed on %s %s", self.command, self.path)
            self.close_connection = True
            return "500 Internal Server Error", [("Content-Type", "text/plain")], b"error"
        status, headers = started[0]
        return status, headers, b"".join(chunks)

    def _respond(
        self, method: str, status: str, headers: list[tuple[str, str]], payload: bytes
    ) -> None:
        code = int(status.split(None, 1)[0])
        lines = [f"HTTP/1.1 {status}"]
        has_length = False
        for name, value in headers:
            lowered = name.lower()
            if lowered in _HOP_BY_HOP:
                continue
            has_length = has_length or lowered == "content-length"
            lines.append(f"{name}: {value}")
        bodyless = method == "HEAD" or code < 200 or code in _NO_BODY_STATUSES
        if not has_length and not bodyless:
            lines.append(f"Content-Length: {len(payload)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head if bodyless else head + payload)


def _read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body, and not a byte of the next request."""
    stream = environ["wsgi.input"]
    if isinstance(stream, DechunkedInput):
        return bytes(stream.read())
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return bytes(stream.read(length)) if length > 0 else b""
