"""Types of the C extension _http11c.c (built optionally; see setup.py)."""

from collections.abc import Iterable
from typing import ClassVar, Final, final

@final
class Simple(tuple[int, str | None, str | None, str | None, bool, int]):
    """parse_simple's answer: one whole 2xx response, its fields by name or index."""

    _fields: ClassVar[tuple[str, str, str, str, str, str]]
    __match_args__: Final = (
        "status",
        "echoed",
        "variant",
        "error_type",
        "keep_alive",
        "body_length",
    )

    def __new__(cls, values: Iterable[object], /) -> Simple: ...
    @property
    def status(self) -> int: ...
    @property
    def echoed(self) -> str | None: ...  # X-Amzn-SageMaker-Custom-Attributes
    @property
    def variant(self) -> str | None: ...  # X-Amzn-Invoked-Production-Variant
    @property
    def error_type(self) -> str | None: ...  # X-Amzn-ErrorType
    @property
    def keep_alive(self) -> bool: ...
    @property
    def body_length(self) -> int: ...

def parse_simple(data: bytes, /) -> Simple | None: ...
