"""The message browser: records of one partition from an offset (or a time), as the console shows them.

Reads happen on the broker's event loop (a ``pread`` of at most ``READ_CHUNK_BYTES`` per step, through
the partition log's own ``read``, so only durable, visible batches are returned); decoding (maybe
decompressing) runs in a worker thread, since a compressed batch can take longer than a page handler
may hold the loop. Control records (transaction markers) are skipped, as consumers skip them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Final

from riel.console.render import Format, Rendered, iso_ms, render_bytes
from riel.errors import KafkaApiError
from riel.records import BatchHeader, Record, decode_batches
from riel.storage.partition_log import PartitionLog

READ_CHUNK_BYTES: Final = 1024 * 1024
MAX_LIMIT: Final = 500
MAX_READS: Final = 8  # chunks read per request at most, however small the records


@dataclass(frozen=True, slots=True)
class MessageView:
    offset: int
    timestamp: int
    timestamp_type: str  # "CreateTime" or "LogAppendTime"
    key: Rendered
    value: Rendered
    headers: list[tuple[str, Rendered]]

    @property
    def time(self) -> str:
        return iso_ms(self.timestamp)

    def as_json(self) -> dict[str, object]:
        return {
            "offset": self.offset,
            "timestamp": self.timestamp,
            "time": self.time,
            "timestamp_type": self.timestamp_type,
            "key": self.key.as_json(),
            "value": self.value.as_json(),
            "headers": [{"name": name, "value": value.as_json()} for name, value in self.headers],
        }


@dataclass(slots=True)
class Page:
    """Messages from ``start`` on; ``next_offset`` is where the following page (or a live tail) starts."""

    start: int
    next_offset: int
    log_start_offset: int
    high_watermark: int
    messages: list[MessageView] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "start": self.start,
            "next_offset": self.next_offset,
            "log_start_offset": self.log_start_offset,
            "high_watermark": self.high_watermark,
            "messages": [m.as_json() for m in self.messages],
            "error": self.error,
        }


def offset_for_time(plog: PartitionLog, timestamp_ms: int) -> int:
    """First offset whose record has a timestamp >= ``timestamp_ms`` (the high watermark if none)."""
    found = plog.offset_for_timestamp(timestamp_ms)
    return plog.high_watermark if found is None else max(found[0], plog.log_start_offset)


async def read_page(plog: PartitionLog, offset: int, limit: int, fmt: Format) -> Page:
    """Up to ``limit`` messages at or after ``offset`` (clamped to the log's visible range)."""
    limit = max(1, min(limit, MAX_LIMIT))
    start = min(max(offset, plog.log_start_offset), plog.high_watermark)
    page = Page(start, start, plog.log_start_offset, plog.high_watermark)
    position = start
    for _ in range(MAX_READS):
        if len(page.messages) >= limit or position >= plog.high_watermark:
            break
        try:
            chunk = plog.read(position, READ_CHUNK_BYTES)
        except KafkaApiError as exc:  # retention moved the start meanwhile
            page.error = str(exc)
            break
        if chunk is None:
            break
        try:
            data = chunk.read_bytes()
        finally:
            chunk.close()
        try:
            batches = await asyncio.to_thread(decode_batches, data)
        except KafkaApiError as exc:
            page.error = f"cannot decode the batch at offset {position}: {exc}"
            break
        if not batches:
            break
        high_watermark = plog.high_watermark
        for header, records in batches:
            if header.is_control:
                continue
            for record in records:
                if record.offset < start or record.offset >= high_watermark or len(page.messages) >= limit:
                    continue
                page.messages.append(_view(header, record, fmt))
        # Continue after the last message taken, or after the last batch read if none was taken there.
        last_batch_end = batches[-1][0].next_offset
        position = page.messages[-1].offset + 1 if len(page.messages) >= limit else last_batch_end
    page.next_offset = max(position, start)
    if page.messages:
        page.next_offset = max(page.next_offset, page.messages[-1].offset + 1)
    return page


def _view(header: BatchHeader, record: Record, fmt: Format) -> MessageView:
    return MessageView(
        offset=record.offset,
        timestamp=record.timestamp,
        timestamp_type="LogAppendTime" if header.timestamp_type else "CreateTime",
        key=render_bytes(record.key, fmt),
        value=render_bytes(record.value, fmt),
        headers=[(name, render_bytes(value, fmt)) for name, value in record.headers],
    )
