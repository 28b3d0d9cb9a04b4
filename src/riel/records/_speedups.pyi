"""C fast path for record sections (``_speedups.c``); see ``riel.records.fast_records`` for the contract."""

from collections.abc import Sequence
from typing import TypeVar

_T = TypeVar("_T", bound=tuple[object, ...])

def encode_records(
    items: Sequence[tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]] | None, int]],
    base_timestamp: int,
) -> tuple[bytes, int]: ...
def decode_records(
    buf: bytes | bytearray | memoryview,
    count: int,
    base_offset: int,
    base_timestamp: int,
    log_append_time: int | None,
    topic: str,
    partition: int,
    min_offset: int,
    cls: type[_T],
) -> list[_T]: ...
