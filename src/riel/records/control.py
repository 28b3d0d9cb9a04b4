"""Transaction markers: the control batches that end a transaction in each of its partitions.

A marker is a batch with the transactional and control attribute bits set, the producer's id and epoch,
no sequence (-1), and one record whose key is ``version:int16 type:int16`` (0 = ABORT, 1 = COMMIT) and
whose value is ``version:int16 coordinator_epoch:int32`` (Kafka's ``EndTransactionMarker``). Consumers
never hand control records to the application; a read_committed consumer uses an ABORT marker to stop
skipping the producer's records.
"""

from __future__ import annotations

import mmap
import struct
from typing import Final

from riel.records.batch import encode_batch
from riel.records.batch_header import BATCH_HEADER_SIZE
from riel.records.errors import InvalidRecordError
from riel.records.record_codec import Record, read_varint

ABORT: Final = 0
COMMIT: Final = 1
NOT_A_MARKER: Final = -1

_KEY: Final = struct.Struct(">hh")  # version, type
_VALUE: Final = struct.Struct(">hi")  # version, coordinator epoch


def marker_batch(
    producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int, timestamp_ms: int
) -> bytes:
    """A COMMIT or ABORT marker batch (base offset 0: the log assigns the real one)."""
    record = Record(
        offset=0,
        timestamp=timestamp_ms,
        key=_KEY.pack(0, COMMIT if commit else ABORT),
        value=_VALUE.pack(0, coordinator_epoch),
    )
    return encode_batch(
        [record],
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=-1,
        is_transactional=True,
        is_control=True,
    )


def marker_type(buf: bytes | bytearray | memoryview | mmap.mmap, position: int, end: int) -> int:
    """COMMIT or ABORT for the control batch at ``position`` (its first record's key), or NOT_A_MARKER
    when the key is not a transaction marker's. ``end`` is where the batch ends."""
    view = memoryview(buf)[: min(end, len(buf))]
    pos = position + BATCH_HEADER_SIZE
    try:
        _length, pos = read_varint(view, pos)
        pos += 1  # attributes
        _timestamp_delta, pos = read_varint(view, pos)
        _offset_delta, pos = read_varint(view, pos)
        key_length, pos = read_varint(view, pos)
    except InvalidRecordError:
        return NOT_A_MARKER
    if key_length < _KEY.size or pos + _KEY.size > len(view):
        return NOT_A_MARKER
    _version, kind = _KEY.unpack_from(view, pos)
    return kind if kind in (ABORT, COMMIT) else NOT_A_MARKER
