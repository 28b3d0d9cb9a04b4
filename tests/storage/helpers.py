"""Shared helpers for storage tests: batch builders, a log opener and a whole-log reader."""

from __future__ import annotations

from pathlib import Path

from riel.config import FlushPolicy
from riel.records import Record, decode_batches, encode_batch
from riel.storage import LogConfig, PartitionLog

NOW_MS = 1_700_000_000_000


def batch(
    count: int = 1,
    *,
    value: bytes = b"value",
    timestamp: int = NOW_MS,
    producer_id: int = -1,
    epoch: int = -1,
    sequence: int = -1,
    compression: int = 0,
    key: bytes | None = None,
) -> bytearray:
    """One client batch of ``count`` records (offsets 0..count-1, as a producer sends them)."""
    records = [Record(0, timestamp + i, key, value + str(i).encode()) for i in range(count)]
    return bytearray(
        encode_batch(
            records,
            compression=compression,
            producer_id=producer_id,
            producer_epoch=epoch,
            base_sequence=sequence,
        )
    )


def config(**topic_configs: str | int) -> LogConfig:
    return LogConfig.from_configs(
        {name.replace("_", "."): str(value) for name, value in topic_configs.items()}
    )


def open_log(
    directory: Path,
    *,
    flush: str = "os",
    clean_shutdown: bool = False,
    now_ms: int = NOW_MS,
    **topic_configs: str | int,
) -> PartitionLog:
    return PartitionLog.open(
        directory,
        config(**topic_configs),
        FlushPolicy.parse(flush),
        clean_shutdown=clean_shutdown,
        now_ms=now_ms,
    )


def read_all(plog: PartitionLog, start: int | None = None, max_bytes: int = 1 << 20) -> list[Record]:
    """Every record from ``start`` (default: log start) to the end, via ``read`` slices."""
    offset = plog.log_start_offset if start is None else start
    records: list[Record] = []
    while offset < plog.high_watermark:
        chunk = plog.read(offset, max_bytes)
        assert chunk is not None, f"read({offset}) returned None below the high watermark"
        try:
            decoded = decode_batches(chunk.read_bytes())
        finally:
            chunk.close()
        assert decoded, "a read slice must hold at least one whole batch"
        for header, batch_records in decoded:
            records.extend(r for r in batch_records if r.offset >= offset)
            next_offset = header.next_offset
        offset = next_offset
    return records


def values(records: list[Record]) -> list[bytes | None]:
    return [r.value for r in records]
