"""Types of the C extension _eventstreamc.c (built optionally; see setup.py)."""

from collections.abc import Callable
from typing import final

from loadgen.transport.eventstream import Event, PayloadPart

@final
class Decoder:
    """An incremental event-stream decoder; eventstream.EventStreamDecoder() makes one."""

    def __new__(
        cls,
        payload_part: type[PayloadPart],
        other: Callable[[str | None, str | None, str | None, str | None, str | None, bytes], Event],
        error: type[ValueError],
    ) -> Decoder: ...
    def feed(self, data: bytes | bytearray | memoryview, /) -> list[Event]: ...
    @property
    def pending(self) -> int: ...
    def close(self) -> None: ...

def crc32(data: bytes | bytearray | memoryview, value: int = 0, /) -> int: ...
