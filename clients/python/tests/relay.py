"""A TCP relay between a client and a server that a test controls: `cut()` drops every
connection at once (as a network outage would, no Close frame), `block_websocket` answers
WebSocket upgrades with 502 while plain HTTP passes (a proxy that does not do WebSocket), and
`upstream` can be pointed at another server (a load balancer moving to another node)."""

from __future__ import annotations

import asyncio


class Relay:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.block_websocket = False
        self.upgrades = 0  # WebSocket upgrades passed on
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> Relay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Drops every open connection (RST, no Close frame)."""
        for writer in list(self._links):
            transport = writer.transport
            transport.abort()  # type: ignore[attr-defined]
        self._links.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        upgrade = b"upgrade: websocket" in head.lower()
        if upgrade and self.block_websocket:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()  # type: ignore[attr-defined]
            return
        if upgrade:
            self.upgrades += 1
        self._links.update((writer, up_writer))
        up_writer.write(head)
        await asyncio.gather(
            _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
        )
        self._links.discard(writer)
        self._links.discard(up_writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()  # type: ignore[attr-defined]
