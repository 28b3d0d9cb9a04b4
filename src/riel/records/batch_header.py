"""The record batch v2 header: parse it, validate client batches, patch offsets and timestamps in place.

This is the produce/fetch hot path, so it only ever looks at the fixed 61-byte header of each batch
(plus one CRC-32C pass over the batch body); it never decodes or decompresses records.

Layout (big-endian), see Kafka's ``DefaultRecordBatch``::

    0  baseOffset int64            -- assigned by the broker; outside the CRC so it can be patched
    8  batchLength int32           -- bytes after this field, so the batch is batchLength + 12 bytes
    12 partitionLeaderEpoch int32  -- also outside the CRC
    16 magic int8 (= 2)
    17 crc uint32                  -- CRC-32C of everything from attributes to the end of the batch
    21 attributes int16            -- bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control
    23 lastOffsetDelta int32
    27 baseTimestamp int64
    35 maxTimestamp int64
    43 producerId int64
    51 producerEpoch int16
    53 baseSequence int32
    57 recordsCount int32
    61 records...
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

import crc32c

from riel.errors import ErrorCode
from riel.records.errors import InvalidRecordError

BATCH_HEADER_SIZE: Final = 61
RECORDS_COUNT_OFFSET: Final = 57
LOG_OVERHEAD: Final = 12  # baseOffset + batchLength: the part of a batch that batchLength does not count
BATCH_LENGTH_OFFSET: Final = 8
PARTITION_LEADER_EPOCH_OFFSET: Final = 12
MAGIC_OFFSET: Final = 16
CRC_OFFSET: Final = 17
ATTRIBUTES_OFFSET: Final = 21
LAST_OFFSET_DELTA_OFFSET: Final = 23
BASE_TIMESTAMP_OFFSET: Final = 27
MAX_TIMESTAMP_OFFSET: Final = 35
MIN_BATCH_LENGTH: Final = BATCH_HEADER_SIZE - LOG_OVERHEAD
CURRENT_MAGIC: Final = 2

COMPRESSION_MASK: Final = 0x07
TIMESTAMP_TYPE_MASK: Final = 0x08  # set: LogAppendTime (maxTimestamp is every record's timestamp)
TRANSACTIONAL_MASK: Final = 0x10
CONTROL_MASK: Final = 0x20
MAX_COMPRESSION_ID: Final = 4  # zstd

NO_PRODUCER_ID: Final = -1
NO_PRODUCER_EPOCH: Final = -1
NO_SEQUENCE: Final = -1
_INT32_MAX: Final = 2**31 - 1

HEADER_STRUCT: Final = struct.Struct(">qiibIhiqqqhii")
_OFFSET: Final = struct.Struct(">q")
_INT16: Final = struct.Struct(">h")
_UINT32: Final = struct.Struct(">I")


@dataclass(slots=True)
class BatchHeader:
    """The fixed header of one record batch (field order = wire order)."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def size(self) -> int:
        """Bytes the whole batch takes, header included."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        """0 = CreateTime, 1 = LogAppendTime."""
        return (self.attributes & TIMESTAMP_TYPE_MASK) >> 3

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def last_sequence(self) -> int:
        """Sequence of the last record; sequences wrap from 2**31-1 to 0 like Kafka's."""
        return increment_sequence(self.base_sequence, self.last_offset_delta)


def increment_sequence(sequence: int, increment: int) -> int:
    """``sequence + increment`` with Kafka's wrap-around at int32 max (``NO_SEQUENCE`` stays)."""
    if sequence < 0:
        return NO_SEQUENCE
    if sequence > _INT32_MAX - increment:
        return increment - (_INT32_MAX - sequence) - 1
    return sequence + increment


def read_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Parse the header at ``pos``; ``InvalidRecordError(CORRUPT_MESSAGE)`` if fewer than 61 bytes remain."""
    if pos < 0 or len(buf) - pos < BATCH_HEADER_SIZE:
        raise InvalidRecordError(
            ErrorCode.CORRUPT_MESSAGE,
            f"record batch header needs {BATCH_HEADER_SIZE} bytes at position {pos}, "
            f"only {max(0, len(buf) - pos)} available",
        )
    return BatchHeader(*HEADER_STRUCT.unpack_from(buf, pos))


def batch_crc(buf: bytes | bytearray | memoryview, pos: int, size: int) -> int:
    """CRC-32C of the batch at ``pos`` (attributes to end), as stored in its ``crc`` field."""
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    return int(crc32c.crc32c(view[pos + ATTRIBUTES_OFFSET : pos + size]))


def validate_batches(buf: bytes | bytearray | memoryview, max_message_bytes: int) -> list[BatchHeader]:
    """Check client batches the way Kafka does on append; return their headers in order.

    Checks: at least one batch; each has magic 2, a length that covers the header and lies inside
    ``buf`` (no trailing partial batch), size <= ``max_message_bytes`` (the whole batch, as Kafka
    counts it), a CRC-32C that matches, a known compression codec, records_count >= 1 and
    last_offset_delta == records_count - 1, is not a control batch, and carries a sequence when it
    carries a producer id. Records are not decoded (compressed ones could not be without
    decompressing), so per-record corruption inside a batch with a valid CRC is not detected.

    Raises ``InvalidRecordError`` with CORRUPT_MESSAGE (sizes, CRC), MESSAGE_TOO_LARGE,
    UNSUPPORTED_COMPRESSION_TYPE or INVALID_RECORD (everything else).
    """
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    total = len(view)
    if total == 0:
        raise InvalidRecordError(ErrorCode.INVALID_RECORD, "produce request carries no record batch")
    unpack = HEADER_STRUCT.unpack_from
    crc_of = crc32c.crc32c
    headers: list[BatchHeader] = []
    pos = 0
    while pos < total:
        if total - pos < BATCH_HEADER_SIZE:
            raise InvalidRecordError(
                ErrorCode.CORRUPT_MESSAGE,
                f"{total - pos} trailing bytes at position {pos} are too short for a record batch header",
            )
        fields = unpack(view, pos)
        header = BatchHeader(*fields)
        magic = fields[3]
        if magic != CURRENT_MAGIC:
            raise InvalidRecordError(
                ErrorCode.INVALID_RECORD, f"record batch at position {pos} has magic {magic}, not 2"
            )
        batch_length = fields[1]
        size = batch_length + LOG_OVERHEAD
        if batch_length < MIN_BATCH_LENGTH or pos + size > total:
            raise InvalidRecordError(
                ErrorCode.CORRUPT_MESSAGE,
                f"record batch at position {pos} claims length {batch_length}, but "
                f"{total - pos - LOG_OVERHEAD} bytes follow and the minimum is {MIN_BATCH_LENGTH}",
            )
        if size > max_message_bytes:
            raise InvalidRecordError(
                ErrorCode.MESSAGE_TOO_LARGE,
                f"record batch of {size} bytes exceeds max.message.bytes {max_message_bytes}",
            )
        if crc_of(view[pos + ATTRIBUTES_OFFSET : pos + size]) != fields[4]:
            raise InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, f"record batch at {pos} fails its CRC")
        attributes = fields[5]
        if attributes & COMPRESSION_MASK > MAX_COMPRESSION_ID:
            raise InvalidRecordError(
                ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
                f"record batch at position {pos} uses unknown compression id {attributes & COMPRESSION_MASK}",
            )
        if attributes & CONTROL_MASK:
            raise InvalidRecordError(ErrorCode.INVALID_RECORD, "clients may not write control batches")
        count = fields[12]
        if count < 1 or fields[6] != count - 1:
            raise InvalidRecordError(
                ErrorCode.INVALID_RECORD,
                f"record batch at position {pos} has records_count {count} and last_offset_delta {fields[6]}",
            )
        if fields[9] >= 0 and fields[11] < 0:
            raise InvalidRecordError(
                ErrorCode.INVALID_RECORD, f"batch of producer {fields[9]} carries no sequence number"
            )
        if attributes & TRANSACTIONAL_MASK and fields[9] < 0:
            raise InvalidRecordError(ErrorCode.INVALID_RECORD, "transactional batch without a producer id")
        headers.append(header)
        pos += size
    return headers


def patch_base_offset(buf: bytearray | memoryview, pos: int, offset: int) -> None:
    """Assign ``offset`` to the batch at ``pos``; baseOffset is outside the CRC, so nothing else changes."""
    _OFFSET.pack_into(buf, pos, offset)


def set_log_append_time(buf: bytearray | memoryview, pos: int, timestamp_ms: int) -> int:
    """Mark the batch at ``pos`` as LogAppendTime with ``timestamp_ms`` and recompute its CRC.

    As in Kafka, only the timestamp-type bit and maxTimestamp change (consumers then use maxTimestamp
    for every record); the records themselves are untouched, compressed or not. Returns the new CRC.
    """
    size = struct.unpack_from(">i", buf, pos + BATCH_LENGTH_OFFSET)[0] + LOG_OVERHEAD
    attributes = _INT16.unpack_from(buf, pos + ATTRIBUTES_OFFSET)[0] | TIMESTAMP_TYPE_MASK
    _INT16.pack_into(buf, pos + ATTRIBUTES_OFFSET, attributes)
    _OFFSET.pack_into(buf, pos + MAX_TIMESTAMP_OFFSET, timestamp_ms)
    crc = batch_crc(buf, pos, size)
    _UINT32.pack_into(buf, pos + CRC_OFFSET, crc)
    return crc
