"""Fast encode/decode of the (uncompressed) records section of a v2 batch, for the embedded SDK.

Same bytes and the same verdicts as ``record_codec`` (the simple reference path), but shaped for the
SDK: items in are plain tuples ``(key, value, headers or None, timestamp_ms)``, records out are
instances of a 7-field NamedTuple ``cls(topic, partition, offset, timestamp, key, value, headers)``.

``encode_records``/``decode_records`` are the C extension ``riel.records._speedups`` when it was built
(``SPEEDUPS``), else the pure-Python ``py_encode_records``/``py_decode_records`` below. Setting
``RIEL_NO_SPEEDUPS=1`` forces the Python ones. The tests hold all three paths to the same bytes.

Contract details shared by both paths:

- keys, values and header values are ``bytes`` (or subclasses) or ``None``; header keys ``str``;
  timestamps ``int``. Anything else: ``TypeError``. Timestamps, ``base_timestamp`` and their
  differences must fit in int64 (Kafka's field type): ``OverflowError`` otherwise (the reference
  codec would silently write wrong bytes).
- ``encode_records`` returns ``-1`` (Kafka's "no timestamp") as max timestamp for no items.
- decoding accepts exactly what ``record_codec.decode_records`` accepts, including its leniencies
  (any negative length means null; a 10-byte varint may carry more than 64 bits); anything else raises
  ``InvalidRecordError(CORRUPT_MESSAGE)``. Records skipped by ``min_offset`` are validated all the same.
"""

from __future__ import annotations

import functools
import importlib
import operator
import os
from collections.abc import Sequence
from types import ModuleType
from typing import Final, TypeVar

from riel.errors import ErrorCode
from riel.records.errors import InvalidRecordError
from riel.records.record_codec import read_varint

__all__ = [
    "SPEEDUPS",
    "Header",
    "Item",
    "decode_records",
    "encode_records",
    "py_decode_records",
    "py_encode_records",
]

Header = tuple[str, bytes | None]
Item = tuple[bytes | None, bytes | None, Sequence[Header] | None, int]
T = TypeVar("T", bound=tuple[object, ...])

_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_UINT64_MASK: Final = 0xFFFFFFFFFFFFFFFF

# Encoded zigzag varints of 0.._TABLE_SIZE-1 (one or two bytes), so that lengths, offset deltas and
# usual timestamp deltas are looked up instead of computed; and the zigzag value of every one- or
# two-byte varint, indexed by its 14 payload bits. Built on first use: with the C path they are unused.
_TABLE_SIZE: Final = 8192


@functools.cache
def _tables() -> tuple[list[bytes], list[int]]:
    encoded = [bytes((2 * v,)) for v in range(64)]
    encoded += [bytes(((2 * v) & 0x7F | 0x80, (2 * v) >> 7)) for v in range(64, _TABLE_SIZE)]
    decoded = [(u >> 1) ^ -(u & 1) for u in range(1 << 14)]
    return encoded, decoded


def _corrupt(message: str) -> InvalidRecordError:
    return InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, message)


# --------------------------------------------------------------------------------------------------
# encode


def _varint(value: int) -> bytes:
    """The zigzag varint of an int64 (the table covers the small non-negative ones)."""
    if 0 <= value < _TABLE_SIZE:
        return _tables()[0][value]
    if value.__class__ is not int and not isinstance(value, int):
        raise TypeError(f"expected int, not {type(value).__name__}")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise OverflowError(f"{value} is out of int64 range")
    unsigned = ((value << 1) ^ (value >> 63)) & _UINT64_MASK
    out = bytearray()
    while unsigned >= 0x80:
        out.append((unsigned & 0x7F) | 0x80)
        unsigned >>= 7
    out.append(unsigned)
    return bytes(out)


def _field(data: object, what: str) -> bytes:
    """A bytes-or-None field, prefixed with its length."""
    if data is None:
        return b"\x01"
    if isinstance(data, bytes):
        data = bytes(data)  # a subclass cannot lie about its length or contents
        return _varint(len(data)) + data
    raise TypeError(f"{what} must be bytes or None, not {type(data).__name__}")


def _encode_headers(headers: Sequence[Header]) -> bytes:
    headers = list(headers)
    parts = [_varint(len(headers))]
    for header in headers:
        if len(header) != 2:
            raise TypeError("a record header must be a (str, bytes | None) pair")
        name, value = header
        if not isinstance(name, str):
            raise TypeError(f"a record header key must be str, not {type(name).__name__}")
        parts.append(_field(name.encode(), "a record header key"))
        parts.append(_field(value, "a record header value"))
    return b"".join(parts)


def py_encode_records(items: Sequence[Item], base_timestamp: int) -> tuple[bytes, int]:
    """Uncompressed records section for ``items`` (key, value, headers or None, timestamp_ms).

    Record ``i`` gets offsetDelta ``i`` and timestampDelta ``timestamp - base_timestamp``. Returns the
    section and the largest timestamp (``-1`` for no items).
    """
    if not isinstance(base_timestamp, int):
        raise TypeError(f"base_timestamp must be int, not {type(base_timestamp).__name__}")
    if not _INT64_MIN <= base_timestamp <= _INT64_MAX:
        raise OverflowError("base_timestamp out of int64 range")
    table = _tables()[0]
    size = _TABLE_SIZE
    parts: list[bytes] = []
    max_timestamp = _INT64_MIN
    try:
        for offset_delta, (key, value, headers, timestamp) in enumerate(items):
            if timestamp > max_timestamp:
                max_timestamp = timestamp
            delta = timestamp - base_timestamp
            if 0 <= delta < size:
                head = table[delta]
            else:
                if not _INT64_MIN <= timestamp <= _INT64_MAX:
                    raise OverflowError(f"timestamp {timestamp} out of int64 range")
                head = _varint(delta)
            # head: timestampDelta + offsetDelta; tail: key, value and header fields
            head += table[offset_delta] if offset_delta < size else _varint(offset_delta)
            if key is None:
                head += b"\x01"
            elif key.__class__ is bytes:
                head += table[len(key)] + key if len(key) < size else _varint(len(key)) + key
            else:
                head += _field(key, "key")
            if value.__class__ is bytes:
                length = len(value)
                if length < size:
                    head += table[length]
                else:
                    head += _varint(length)
                tail = b"\x00" if headers is None else _encode_headers(headers)
                body = len(head) + length + len(tail) + 1
                parts += (
                    table[body] if body < size else _varint(body),
                    b"\x00",
                    head,
                    value,
                    tail,
                )
            else:
                head += _field(value, "value")
                head += b"\x00" if headers is None else _encode_headers(headers)
                body = len(head) + 1
                parts += (table[body] if body < size else _varint(body), b"\x00", head)
    except ValueError as e:  # an item that is not 4 values long; but let UnicodeEncodeError through
        if isinstance(e, UnicodeError):
            raise
        raise TypeError("each item must be (key, value, headers, timestamp)") from e
    if not parts:
        return b"", -1
    if max_timestamp > _INT64_MAX:
        raise OverflowError(f"timestamp {max_timestamp} out of int64 range")
    return b"".join(parts), max_timestamp


# --------------------------------------------------------------------------------------------------
# decode


# The slow path of a varint is record_codec's own reader: same values, same errors.
_read_varint = read_varint


def py_decode_records(
    buf: bytes | bytearray | memoryview,
    count: int,
    base_offset: int,
    base_timestamp: int,
    log_append_time: int | None,
    topic: str,
    partition: int,
    min_offset: int,
    cls: type[T],
) -> list[T]:
    """Decode ``count`` records of an uncompressed records section into ``cls`` instances.

    Records with offset < ``min_offset`` are skipped (still validated). ``cls`` is a NamedTuple of the
    7 fields (topic, partition, offset, timestamp, key, value, headers); ``headers`` is a tuple of
    (str, bytes | None) pairs, the shared empty tuple when there are none (not tracked by the GC,
    which halves the tracked allocations per record). ``log_append_time`` (if not None) replaces every
    timestamp. ``InvalidRecordError(CORRUPT_MESSAGE)`` for anything ``record_codec`` rejects.
    """
    if not (isinstance(cls, type) and issubclass(cls, tuple)):
        raise TypeError("cls must be a tuple subclass (a NamedTuple of 7 fields)")
    data = buf if buf.__class__ is bytes else bytes(memoryview(buf))  # bytes(5) would be 5 zero bytes
    count = operator.index(count)
    base_offset = operator.index(base_offset)
    base_timestamp = operator.index(base_timestamp)
    min_offset = operator.index(min_offset)
    if log_append_time is not None:
        log_append_time = operator.index(log_append_time)
    new = tuple.__new__
    zigzag = _tables()[1]
    read_varint = _read_varint
    out: list[T] = []
    append = out.append
    total = len(data)
    pos = 0
    # Varints are read against the end of the whole buffer, like the reference; running off it is an
    # IndexError, turned into the reference's error below. Each varint: one byte, two bytes (both from
    # the zigzag table), or the general reader.
    try:
        for _ in range(count):
            b = data[pos]
            if b < 0x80:
                size = zigzag[b]
                pos += 1
            elif (b2 := data[pos + 1]) < 0x80:
                size = zigzag[(b & 0x7F) | (b2 << 7)]
                pos += 2
            else:
                size, pos = read_varint(data, pos)
            end = pos + size
            if size < 1 or end > total:
                raise _corrupt(f"record of length {size} at {pos} is invalid")
            # pos + 1: attributes (unused)
            b = data[pos + 1]
            if b < 0x80:
                timestamp_delta = zigzag[b]
                pos += 2
            else:
                timestamp_delta, pos = read_varint(data, pos + 1)
            b = data[pos]
            if b < 0x80:
                offset = base_offset + zigzag[b]
                pos += 1
            elif (b2 := data[pos + 1]) < 0x80:
                offset = base_offset + zigzag[(b & 0x7F) | (b2 << 7)]
                pos += 2
            else:
                offset_delta, pos = read_varint(data, pos)
                offset = base_offset + offset_delta
            # key: mostly null
            b = data[pos]
            if b == 1:
                key = None
                pos += 1
            else:
                if b < 0x80:
                    length = zigzag[b]
                    pos += 1
                else:
                    length, pos = read_varint(data, pos)
                if length < 0:
                    key = None
                elif pos + length > end:
                    raise _corrupt("record field runs past the end of its record")
                else:
                    key = data[pos : pos + length]
                    pos += length
            # value
            b = data[pos]
            if b < 0x80:
                length = zigzag[b]
                pos += 1
            elif (b2 := data[pos + 1]) < 0x80:
                length = zigzag[(b & 0x7F) | (b2 << 7)]
                pos += 2
            else:
                length, pos = read_varint(data, pos)
            if length < 0:
                value = None
            elif pos + length > end:
                raise _corrupt("record field runs past the end of its record")
            else:
                value = data[pos : pos + length]
                pos += length
            # headers: mostly a zero count, the record's last byte
            headers: tuple[Header, ...] = ()
            if pos + 1 == end and data[pos] == 0:
                pos = end
            else:
                found: list[Header] = []
                pos = _read_headers(data, pos, end, found)
                headers = tuple(found)
                if pos != end:
                    raise _corrupt(f"record claims {size} bytes but its fields take {size + pos - end}")
            if offset >= min_offset:
                timestamp = base_timestamp + timestamp_delta if log_append_time is None else log_append_time
                append(new(cls, (topic, partition, offset, timestamp, key, value, headers)))
    except IndexError:
        raise _corrupt("record data ends inside a varint") from None
    if pos != total:
        raise _corrupt(f"{total - pos} bytes follow the last record")
    return out


def _read_field(data: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    length, pos = _read_varint(data, pos)
    if length < 0:
        return None, pos
    if pos + length > end:
        raise _corrupt("record field runs past the end of its record")
    return data[pos : pos + length], pos + length


def _read_headers(data: bytes, pos: int, end: int, headers: list[Header]) -> int:
    """Append the headers at ``pos`` (count first) to ``headers``; the position after them."""
    count, pos = _read_varint(data, pos)
    if count < 0 or count > end - pos:
        raise _corrupt(f"invalid header count {count}")
    for _ in range(count):
        name, pos = _read_field(data, pos, end)
        if name is None:
            raise _corrupt("record header with a null key")
        value, pos = _read_field(data, pos, end)
        try:
            headers.append((name.decode(), value))
        except UnicodeDecodeError:
            raise _corrupt("record header key is not UTF-8") from None
    return pos


# --------------------------------------------------------------------------------------------------
# choose the path


def _import_speedups() -> ModuleType | None:
    if os.environ.get("RIEL_NO_SPEEDUPS", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module("riel.records._speedups")
    except ImportError:
        return None


_speedups = _import_speedups()
SPEEDUPS: Final[bool] = _speedups is not None

encode_records = py_encode_records
decode_records = py_decode_records
if _speedups is not None:
    encode_records = _speedups.encode_records
    decode_records = _speedups.decode_records
