"""Messages between the runner and its worker processes: length-prefixed pickles over a
socket pair, read and written by asyncio streams.

The event loop owns both ends, so they are non-blocking: a message larger than the socket's
buffer arrives in pieces, and asyncio's StreamReader keeps what has come until the rest
does. Only EOF ends a channel; a short read never does.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from typing import Any

_HEADER = struct.Struct("!I")  # the pickle's length


class ChannelClosed(Exception):
    """The other end closed the channel (at a message boundary or inside one)."""


class Channel:
    """One end of a runner <-> worker socket pair, open on the running loop."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        reader, writer = await asyncio.open_connection(sock=sock)
        return cls(reader, writer)

    def send(self, message: Any) -> None:
        """Queue one message; asyncio writes it as the socket takes it. After the other end
        has gone, nothing is written (the reader learns of it as EOF)."""
        if self._writer.is_closing():
            return
        body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(_HEADER.pack(len(body)) + body)

    async def receive(self) -> Any:
        """The next whole message; ChannelClosed at EOF."""
        try:
            (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
            body = await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ChannelClosed() from exc
        return pickle.loads(body)

    async def flush(self) -> None:
        """Wait until everything sent has been handed to the socket."""
        try:
            await self._writer.drain()
        except ConnectionError:
            pass  # the other end has gone: nothing more to say

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass
