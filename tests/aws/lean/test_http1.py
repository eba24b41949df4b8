"""The lean path's HTTP/1.1 client against servers that misbehave on purpose.

Each server here is a few lines of raw asyncio, so that what goes over the wire
(keep-alive or not, chunked, silent, hanging up) is exactly what the test says.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from iras.aws.lean.http1 import ConnectFailed, ConnectionLost, Http1Client, ReadTimedOut
from tests.tls import answer_ok, self_signed, tls_serving

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A local server running `handler` for each connection, counting connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                await self.handler(reader, writer)
        finally:
            self.open_now -= 1
            writer.close()


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[Server]:
    server = Server(handler)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0)
    server.url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    async with listener:
        yield server


async def read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    """The request line and body of the next request on the connection."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return head.split("\r\n")[0], body


def answer(body: bytes, *headers: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *headers, "", ""]
    return "\r\n".join(lines).encode() + body


async def echo_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer every request on the connection with its request line and body."""
    while True:
        line, body = await read_request(reader)
        writer.write(answer(line.encode() + b"|" + body))
        await writer.drain()


def client(read_timeout_s: float = 5.0, max_connections: int = 10) -> Http1Client:
    return Http1Client(
        max_connections=max_connections, connect_timeout_s=2.0, read_timeout_s=read_timeout_s
    )


async def test_one_connection_carries_request_after_request() -> None:
    async with serving(echo_forever) as server, client() as http:
        for i in range(5):
            got = await http.request("PUT", f"{server.url}/b/k{i}?x=1", {}, b"body %d" % i)
            assert (got.status, got.body) == (200, b"PUT /b/k%d?x=1 HTTP/1.1|body %d" % (i, i))
        got = await http.request("GET", f"{server.url}/b/k", {}, None)
        assert got.body == b"GET /b/k HTTP/1.1|"
    assert server.connections == 1


async def test_headers_arrive_in_lower_case_and_repeated_ones_joined() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"", 'ETag: "abc"', "X-Many: 1", "X-Many: 2"))

    async with serving(handler) as server, client() as http:
        got = await http.request("GET", server.url + "/", {}, None)
    assert got.headers["etag"] == '"abc"'
    assert got.headers["x-many"] == "1, 2"


async def test_a_chunked_answer_is_read_whole() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for chunk in (b"<Error>", b"<Code>SlowDown</Code>", b"</Error>"):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")

    async with serving(handler) as server, client() as http:
        got = await http.request("GET", server.url + "/", {}, None)
    assert got.body == b"<Error><Code>SlowDown</Code></Error>"


async def test_a_connection_the_server_closed_while_idle_is_not_used_again() -> None:
    async def once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"ok"))
        await writer.drain()  # then the connection closes, as an idle keep-alive timeout does

    async with serving(once_then_close) as server, client() as http:
        assert (await http.request("GET", server.url + "/", {}, None)).body == b"ok"
        await asyncio.sleep(0.1)  # the close reaches the client
        assert (await http.request("GET", server.url + "/", {}, None)).body == b"ok"
    assert server.connections == 2


async def test_an_answer_with_connection_close_ends_its_connection() -> None:
    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # the server would carry on; the client must not
            await read_request(reader)
            writer.write(answer(b"ok", "Connection: close"))
            await writer.drain()

    async with serving(closing) as server, client() as http:
        for _ in range(3):
            assert (await http.request("GET", server.url + "/", {}, None)).body == b"ok"
    assert server.connections == 3


async def test_a_silent_server_times_out_after_the_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    async with serving(silent) as server, client(read_timeout_s=0.3) as http:
        started = time.monotonic()
        with pytest.raises(ReadTimedOut):
            await http.request("GET", server.url + "/", {}, None)
        waited_s = time.monotonic() - started
    assert 0.3 <= waited_s < 2.0


async def test_the_read_timeout_counts_from_the_last_byte_received() -> None:
    """An answer that keeps coming, however slowly, is not cut off (a long GetObject)."""
    body = b"0123456789"

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for byte in body:  # 10 bytes, 0.1 s apart: 1 s in all, 3x the read timeout
            await asyncio.sleep(0.1)
            writer.write(bytes([byte]))
            await writer.drain()

    async with serving(trickle) as server, client(read_timeout_s=0.3) as http:
        got = await http.request("GET", server.url + "/", {}, None)
    assert got.body == body


async def test_a_server_that_hangs_up_mid_answer_is_reported() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()

    async with serving(hang_up) as server, client() as http:
        with pytest.raises(ConnectionLost):
            await http.request("GET", server.url + "/", {}, None)


async def test_a_refused_connection_and_an_unknown_scheme_fail_to_connect() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client() as http:
        with pytest.raises(ConnectFailed):
            await http.request("GET", f"http://127.0.0.1:{port}/", {}, None)
        with pytest.raises(ConnectFailed):
            await http.request("GET", "ftp://127.0.0.1/", {}, None)


async def test_no_more_connections_than_allowed_are_open_at_once() -> None:
    async def slow_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, body = await read_request(reader)
            await asyncio.sleep(0.05)
            writer.write(answer(body))
            await writer.drain()

    async with serving(slow_echo) as server, client(max_connections=2) as http:
        answers = await asyncio.gather(
            *(http.request("PUT", server.url + "/", {}, b"%d" % i) for i in range(8))
        )
    assert [got.body for got in answers] == [b"%d" % i for i in range(8)]
    assert server.most_open == 2


async def test_a_cancelled_request_leaves_no_late_answer_for_the_next() -> None:
    """The answer to a request given up on must never be taken for the next request's."""

    async def late_then_prompt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            line, _ = await read_request(reader)
            if "slow" in line:
                await asyncio.sleep(0.3)
            writer.write(answer(line.encode()))
            await writer.drain()

    async with serving(late_then_prompt) as server, client() as http:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await http.request("GET", server.url + "/slow", {}, None)
        got = await http.request("GET", server.url + "/fast", {}, None)
    assert got.body == b"GET /fast HTTP/1.1"


def test_the_same_calls_run_on_uvloop() -> None:
    """The worker's loop and the gateway's (uvloop's transports are not asyncio's classes)."""
    uvloop = pytest.importorskip("uvloop")

    async def two_calls() -> list[bytes]:
        async with serving(echo_forever) as server, client() as http:
            return [
                (await http.request("PUT", f"{server.url}/k", {}, b"x")).body,
                (await http.request("GET", f"{server.url}/k", {}, None)).body,
            ]

    assert uvloop.run(two_calls()) == [b"PUT /k HTTP/1.1|x", b"GET /k HTTP/1.1|"]


async def test_tls_trusts_the_ca_bundle_it_is_given(tmp_path: Path) -> None:
    certificate = self_signed(tmp_path)
    async with tls_serving(certificate, answer_ok) as url:
        bundled = Http1Client(
            max_connections=2,
            connect_timeout_s=2.0,
            read_timeout_s=5.0,
            ca_bundle=str(certificate.cert_pem),
        )
        async with bundled as http:
            assert (await http.request("GET", f"{url}/b/k", {}, None)).body == b"ok"
        async with client() as http:  # the system's CAs know nothing of it
            with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
                await http.request("GET", f"{url}/b/k", {}, None)
