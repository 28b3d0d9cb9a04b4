"""Individual records inside a v2 batch: encode and decode the (uncompressed) records section.

Off the hot path by design: the broker never looks inside a batch. Tests, tools and the SDK use this.

Record layout (varints are zigzag, like protobuf's sint)::

    length varint | attributes int8 | timestampDelta varlong | offsetDelta varint
    keyLength varint (-1 = null) | key | valueLength varint (-1 = null) | value
    headerCount varint | [headerKeyLength varint | headerKey utf-8 | headerValueLength varint | value]...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, NamedTuple

from riel.errors import ErrorCode
from riel.records.errors import InvalidRecordError

_MAX_VARINT_BYTES: Final = 10
_UINT64_MASK: Final = 0xFFFFFFFFFFFFFFFF

Header = tuple[str, bytes | None]


@dataclass
class Record:
    """One record with absolute offset and timestamp (as a consumer sees it).

    ``encode_batch`` ignores ``offset``: records get consecutive offsets from the batch's base offset.
    """

    offset: int
    timestamp: int
    key: bytes | None = None
    value: bytes | None = None
    headers: list[Header] = field(default_factory=list)


def _corrupt(message: str) -> InvalidRecordError:
    return InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, message)


def write_varint(out: bytearray, value: int) -> None:
    """Append ``value`` zigzag-encoded; one function serves varint and varlong (same bytes in range)."""
    unsigned = ((value << 1) ^ (value >> 63)) & _UINT64_MASK
    while unsigned >= 0x80:
        out.append((unsigned & 0x7F) | 0x80)
        unsigned >>= 7
    out.append(unsigned)


def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """(value, position after it) of the zigzag varint at ``pos``."""
    result = 0
    shift = 0
    end = len(buf)
    for _ in range(_MAX_VARINT_BYTES):
        if pos >= end:
            raise InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, "record data ends inside a varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
    raise InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, "varint longer than 10 bytes")


def _write_bytes(out: bytearray, data: bytes | None) -> None:
    if data is None:
        write_varint(out, -1)
    else:
        write_varint(out, len(data))
        out += data


def encode_records(records: list[Record], base_timestamp: int) -> bytes:
    """The uncompressed records section: record ``i`` gets offset delta ``i``."""
    out = bytearray()
    body = bytearray()
    for delta, record in enumerate(records):
        body.clear()
        body.append(0)  # record attributes: unused in v2
        write_varint(body, record.timestamp - base_timestamp)
        write_varint(body, delta)
        _write_bytes(body, record.key)
        _write_bytes(body, record.value)
        write_varint(body, len(record.headers))
        for name, value in record.headers:
            _write_bytes(body, name.encode())
            _write_bytes(body, value)
        write_varint(out, len(body))
        out += body
    return bytes(out)


def _read_bytes(buf: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    length, pos = read_varint(buf, pos)
    if length < 0:
        return None, pos
    if pos + length > end:
        raise InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, "record field runs past the end of its record")
    return buf[pos : pos + length], pos + length


class RecordSpan(NamedTuple):
    """Where one record lies in an uncompressed records section, with what compaction decides on."""

    start: int
    end: int
    offset_delta: int
    timestamp_delta: int
    key: bytes | None
    tombstone: bool  # null value


def record_spans(buf: bytes, count: int) -> list[RecordSpan]:
    """The ``count`` records of a records section as byte spans, without decoding headers: the log
    cleaner copies the records it keeps verbatim (their own offset and timestamp deltas included)."""
    spans: list[RecordSpan] = []
    pos = 0
    total = len(buf)
    for _ in range(count):
        start = pos
        end, timestamp_delta, offset_delta, key, pos = _record_head(buf, pos, total)
        value_length, pos = read_varint(buf, pos)
        spans.append(RecordSpan(start, end, offset_delta, timestamp_delta, key, value_length < 0))
        pos = end
    if pos != total:
        raise _corrupt(f"{total - pos} bytes follow the last record")
    return spans


def _record_head(buf: bytes, pos: int, total: int) -> tuple[int, int, int, bytes | None, int]:
    """(end of the record, timestamp delta, offset delta, key, position after the key) of the record
    whose length varint starts at ``pos``."""
    length, pos = read_varint(buf, pos)
    end = pos + length
    if length < 1 or end > total:
        raise _corrupt(f"record of length {length} at {pos} is invalid")
    pos += 1  # attributes
    timestamp_delta, pos = read_varint(buf, pos)
    offset_delta, pos = read_varint(buf, pos)
    key, pos = _read_bytes(buf, pos, end)
    return end, timestamp_delta, offset_delta, key, pos


def decode_records(
    buf: bytes, count: int, base_offset: int, base_timestamp: int, log_append_time: int | None
) -> list[Record]:
    """Decode ``count`` records; ``log_append_time`` (if set) replaces every record's timestamp."""
    records: list[Record] = []
    pos = 0
    total = len(buf)
    for _ in range(count):
        start = pos
        end, timestamp_delta, offset_delta, key, pos = _record_head(buf, pos, total)
        value, pos = _read_bytes(buf, pos, end)
        header_count, pos = read_varint(buf, pos)
        if header_count < 0 or header_count > end - pos:
            raise InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, f"invalid header count {header_count}")
        headers: list[Header] = []
        for _ in range(header_count):
            name, pos = _read_bytes(buf, pos, end)
            if name is None:
                raise InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, "record header with a null key")
            header_value, pos = _read_bytes(buf, pos, end)
            try:
                headers.append((name.decode(), header_value))
            except UnicodeDecodeError:
                raise _corrupt("record header key is not UTF-8") from None
        if pos != end:
            raise _corrupt(f"record at {start} ends at {end} but its fields run to {pos}")
        timestamp = log_append_time if log_append_time is not None else base_timestamp + timestamp_delta
        records.append(Record(base_offset + offset_delta, timestamp, key, value, headers))
    if pos != total:
        raise InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, f"{total - pos} bytes follow the last record")
    return records
