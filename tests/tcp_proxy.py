"""A TCP proxy that tests can cut: an outage of the AWS endpoint, for real, on demand.

`cut()` does what a dead endpoint does to its clients: new connections are refused (the
port is closed) and open ones are reset, including the idle keep-alive connections
pooled by botocore and aiohttp, which would otherwise carry on as if nothing happened.
`stall()` is the other way an endpoint goes away: connections are taken but nothing
comes back (a black-holed route, a hung server). `restore()` ends either, on the same
port, so clients need no new address.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator

#: SO_LINGER on, zero seconds: closing sends a reset, as a crashed peer's kernel does.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)
_CHUNK_BYTES = 256 * 1024


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target_host:target_port` until cut."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self._stalled = False
        self.port = 0
        self.connections = 0  # accepted since the start, for tests to check traffic went here

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen (on a free port the first time, on the same port after a cut)."""
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self._reset_all()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def stall(self) -> None:
        """Reset every open connection, then take new ones and never answer them."""
        self._stalled = True
        self._reset_all()

    async def restore(self) -> None:
        """Forward again after a cut or a stall."""
        if self._stalled:
            self._stalled = False
            self._reset_all()
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        await self.cut()

    def _reset_all(self) -> None:
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()
        for pipe in list(self._pipes):
            pipe.cancel()

    async def _handle(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        if self._stalled:  # swallow what comes until reset, answer nothing
            self._writers.add(client)
            await _pipe(client_reader, None)
            return
        try:
            upstream_reader, upstream = await asyncio.open_connection(*self._target)
        except OSError:
            _reset(client)
            return
        if self._server is None:  # cut while connecting
            _reset(client)
            _reset(upstream)
            return
        self._writers.update((client, upstream))
        pipes = [
            asyncio.create_task(_pipe(client_reader, upstream)),
            asyncio.create_task(_pipe(upstream_reader, client)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self._pipes.difference_update(pipes)
            for writer in (client, upstream):
                self._writers.discard(writer)
                writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None) -> None:
    """Copy until end of stream, then pass the half-close on (`writer=None`: discard)."""
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(_CHUNK_BYTES):
            if writer is not None:
                writer.write(data)
                await writer.drain()
        if writer is not None and writer.can_write_eof():
            writer.write_eof()


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
    writer.transport.abort()


@contextlib.asynccontextmanager
async def tcp_proxy(target_url: str) -> AsyncIterator[TcpProxy]:
    """A started proxy to the host and port of `target_url` (http://host:port)."""
    host, _, port = target_url.removeprefix("http://").rstrip("/").rpartition(":")
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
