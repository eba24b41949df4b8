"""A small HTTP/1.1 client for the lean calls: kept-alive connections, a request out, the
whole answer back.

aiohttp's request machinery (URL objects, a connector, trace hooks, a streaming
response, a timer per read) cost ~0.37 ms of client CPU per call here, and the lean path
makes five calls per image between gateway and worker. This client makes the same calls
for about half of that (three S3 calls of an image: 1.1 ms of CPU on aiohttp, 0.6 ms
here, signing included). It does what the calls of `iras.aws.lean` need and no more:
HTTP/1.1 with keep-alive, a body sent whole with its Content-Length, the answer read
whole (Content-Length or chunked, parsed by httptools, uvicorn's parser), TLS through
the event loop, a connect timeout, and a read timeout that any arriving byte resets.
No redirects, proxies, cookies, compression, streaming, HEAD requests, or answers whose
end is the connection's (HTTP/1.0 style, which AWS does not send).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import cast
from urllib.parse import urlsplit

import httptools

#: The port of each scheme, where the URL names none.
_DEFAULT_PORTS = {"http": 80, "https": 443}


class HttpError(Exception):
    """A call that got no answer."""


class ConnectFailed(HttpError):
    """No connection could be made: refused, unreachable, unknown host, TLS refused."""


class ConnectTimedOut(ConnectFailed):
    """Connecting took longer than the connect timeout."""


class ReadTimedOut(HttpError, TimeoutError):
    """Connected, but nothing of the answer arrived for the read timeout."""


class ConnectionLost(HttpError):
    """The connection closed or broke before the answer was whole."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer: status, headers (names in lower case), body."""

    status: int
    headers: dict[str, str]
    body: bytes

    # botocore's names for the same, read by its retry checkers (`iras.aws.lean.retries`).
    @property
    def status_code(self) -> int:
        return self.status

    @property
    def content(self) -> bytes:
        return self.body


class _Connection(asyncio.Protocol):
    """One connection, carrying one exchange at a time; httptools calls the `on_*` methods."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, forget: Callable[[_Connection], None]
    ) -> None:
        self._loop = loop
        self._forget = forget
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[Answer] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self.keep_alive = False
        self.last_read = 0.0
        self.watchdog: asyncio.TimerHandle | None = None

    def exchange(self, request: bytes, body: bytes | None) -> asyncio.Future[Answer]:
        """Send a request; the future completes with its answer."""
        assert self._transport is not None
        self._answer = self._loop.create_future()
        self.keep_alive = False
        self.last_read = self._loop.time()
        try:
            if body:
                self._transport.writelines((request, body))
            else:
                self._transport.write(request)
        except (RuntimeError, OSError) as error:  # closed under our feet (uvloop raises)
            self.fail(ConnectionLost(f"the connection closed before the request went: {error}"))
        return self._answer

    def fail(self, error: HttpError) -> None:
        """End the exchange in hand with `error` and the connection with it."""
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
        self.close()

    def closing(self) -> bool:
        """Whether it is closed or closing (by us, or after the server closed its side)."""
        return self._transport is None or self._transport.is_closing()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is one, unregistered

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget(self)
        reason = f": {exc}" if exc else ""
        self.fail(ConnectionLost(f"the connection closed before the answer was whole{reason}"))

    def data_received(self, data: bytes) -> None:
        self.last_read = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.fail(ConnectionLost(f"the answer is not HTTP/1.1: {error}"))

    # --- httptools ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers = {}
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        self._headers[key] = f"{self._headers[key]}, {text}" if key in self._headers else text

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer, self._answer = self._answer, None
        if answer is None or answer.done():  # an answer nobody asked for: do not trust it
            self.close()
            return
        self.keep_alive = self._parser.should_keep_alive()
        status = self._parser.get_status_code()
        answer.set_result(Answer(status, self._headers, b"".join(self._body)))


class Http1Client:
    """Kept-alive connections to any number of endpoints, at most `max_connections` in use;
    over TLS, servers are trusted by the system's CAs, or those of `ca_bundle` (a PEM file).

        Use as `async with Http1Client(...) as http`; `request` is safe to call from many
        tasks of one event loop at once.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        connect_timeout_s: float,
        read_timeout_s: float,
        ca_bundle: str | None = None,
    ) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._ca_bundle = ca_bundle
        self._ssl_context: ssl.SSLContext | None = None
        self._idle: dict[tuple[str, str], list[_Connection]] = {}
        self._all: set[_Connection] = set()

    async def __aenter__(self) -> Http1Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection, idle or not."""
        for connection in list(self._all):
            connection.close()
        self._all.clear()
        self._idle.clear()

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> Answer:
        """Send one request to `url`, sent as it is written (already percent-encoded)."""
        scheme, netloc, path, query, _ = urlsplit(url)
        target = f"{path or '/'}?{query}" if query else path or "/"
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {netloc}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        if body is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body or b'')}\r\n")
        lines.append("\r\n")
        request = "".join(lines).encode("latin-1")
        async with self._slots:
            connection = await self._connection(scheme, netloc)
            try:
                answer = await self._exchange(connection, request, body)
            except BaseException:  # cancelled or failed mid-exchange: the state is unknown
                connection.close()
                raise
            if connection.keep_alive and not connection.closing():
                self._idle.setdefault((scheme, netloc), []).append(connection)
            else:
                connection.close()
            return answer

    async def _exchange(
        self, connection: _Connection, request: bytes, body: bytes | None
    ) -> Answer:
        answer = connection.exchange(request, body)
        loop = asyncio.get_running_loop()
        connection.watchdog = loop.call_later(self._read_timeout_s, self._watch, connection)
        try:
            return await answer
        finally:
            if connection.watchdog is not None:
                connection.watchdog.cancel()
                connection.watchdog = None

    def _watch(self, connection: _Connection) -> None:
        """Fail the exchange if nothing arrived for the read timeout, else look again later."""
        quiet_s = asyncio.get_running_loop().time() - connection.last_read
        if quiet_s >= self._read_timeout_s:
            connection.watchdog = None
            connection.fail(ReadTimedOut(f"no answer for {self._read_timeout_s:g} s"))
        else:
            connection.watchdog = asyncio.get_running_loop().call_later(
                self._read_timeout_s - quiet_s, self._watch, connection
            )

    async def _connection(self, scheme: str, netloc: str) -> _Connection:
        """An idle connection to the endpoint (the most recently used), or a new one."""
        idle = self._idle.get((scheme, netloc))
        while idle:
            connection = idle.pop()
            if not connection.closing():
                return connection
        return await self._connect(scheme, netloc)

    async def _connect(self, scheme: str, netloc: str) -> _Connection:
        if scheme not in _DEFAULT_PORTS:
            raise ConnectFailed(f"cannot connect to {scheme}://{netloc}: not http or https")
        parts = urlsplit(f"{scheme}://{netloc}")
        host, port = parts.hostname or "", parts.port or _DEFAULT_PORTS[scheme]
        tls = self._tls() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, self._all.discard),
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls else None,
                )
        except TimeoutError as error:
            raise ConnectTimedOut(
                f"connecting to {netloc} took over {self._connect_timeout_s:g} s"
            ) from error
        except OSError as error:  # refused, unreachable, unknown host, TLS (ssl.SSLError)
            raise ConnectFailed(f"cannot connect to {netloc}: {error}") from error
        self._all.add(connection)
        return connection

    def _tls(self) -> ssl.SSLContext:
        """The TLS context, made at the first TLS connection (loading CAs takes a while)."""
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context(cafile=self._ca_bundle or None)
        return self._ssl_context
