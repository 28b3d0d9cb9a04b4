"""Record batches v2: the header hot path (re-exported) plus whole-batch encode/decode for tools and tests.

The produce/fetch path only uses ``validate_batches``, ``patch_base_offset`` and
``set_log_append_time`` (see ``batch_header``). ``encode_batch``/``decode_batch`` build and take apart
records, compressing with the optional codec libraries; they are for tests, tools and the SDK.
"""

from __future__ import annotations

import struct
from typing import Final

from riel.errors import ErrorCode
from riel.records.batch_header import (
    BATCH_HEADER_SIZE,
    CONTROL_MASK,
    CRC_OFFSET,
    CURRENT_MAGIC,
    HEADER_STRUCT,
    LOG_OVERHEAD,
    MIN_BATCH_LENGTH,
    RECORDS_COUNT_OFFSET,
    TIMESTAMP_TYPE_MASK,
    TRANSACTIONAL_MASK,
    BatchHeader,
    batch_crc,
    increment_sequence,
    patch_base_offset,
    read_header,
    set_log_append_time,
    validate_batches,
)
from riel.records.compression import Compression, compress, decompress
from riel.records.errors import InvalidRecordError
from riel.records.record_codec import Record, RecordSpan, decode_records, encode_records, record_spans

_CRC_FIELD: Final = struct.Struct(">I")

__all__ = [
    "BATCH_HEADER_SIZE",
    "RECORDS_COUNT_OFFSET",
    "BatchHeader",
    "Compression",
    "InvalidRecordError",
    "Record",
    "RecordSpan",
    "decode_batch",
    "decode_batches",
    "encode_batch",
    "frame_batch",
    "increment_sequence",
    "patch_base_offset",
    "read_header",
    "record_spans",
    "set_log_append_time",
    "validate_batches",
]


def encode_batch(
    records: list[Record],
    base_offset: int = 0,
    compression: int = Compression.NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    base_timestamp: int | None = None,
    is_transactional: bool = False,
    *,
    partition_leader_epoch: int = -1,
    is_control: bool = False,
) -> bytes:
    """One v2 batch holding ``records`` at offsets ``base_offset``, ``base_offset + 1``, ...

    ``base_timestamp`` defaults to the first record's timestamp (what Kafka's producer does); the
    batch's maxTimestamp is the largest record timestamp. Unlike Kafka's producer this always keeps the
    requested codec, even when compressing does not make the records smaller.
    """
    if not records:
        raise ValueError("a record batch needs at least one record")
    if base_timestamp is None:
        base_timestamp = records[0].timestamp
    body = encode_records(records, base_timestamp)
    batch = frame_batch(
        body,
        len(records),
        base_timestamp,
        max(record.timestamp for record in records),
        base_offset=base_offset,
        compression=compression,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        is_transactional=is_transactional,
        partition_leader_epoch=partition_leader_epoch,
        is_control=is_control,
    )
    return bytes(batch)


def frame_batch(
    records_section: bytes | bytearray,
    count: int,
    base_timestamp: int,
    max_timestamp: int,
    *,
    base_offset: int = 0,
    compression: int = Compression.NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_transactional: bool = False,
    partition_leader_epoch: int = -1,
    is_control: bool = False,
    last_offset_delta: int | None = None,
    log_append_time: bool = False,
) -> bytearray:
    """A v2 batch around an encoded (uncompressed) records section of ``count`` records: header,
    compression, CRC. The SDK encodes sections with ``fast_records`` and frames them here.
    ``last_offset_delta`` defaults to ``count - 1``; the log cleaner keeps a compacted batch's original
    one, so the batch still covers the offsets it was given."""
    payload = compress(compression, bytes(records_section)) if compression else records_section
    attributes = int(compression) | (TRANSACTIONAL_MASK if is_transactional else 0)
    attributes |= CONTROL_MASK if is_control else 0
    attributes |= TIMESTAMP_TYPE_MASK if log_append_time else 0
    batch = bytearray(BATCH_HEADER_SIZE)
    HEADER_STRUCT.pack_into(
        batch,
        0,
        base_offset,
        BATCH_HEADER_SIZE - LOG_OVERHEAD + len(payload),
        partition_leader_epoch,
        CURRENT_MAGIC,
        0,  # CRC, computed below once the batch is complete
        attributes,
        count - 1 if last_offset_delta is None else last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        count,
    )
    batch += payload
    _CRC_FIELD.pack_into(batch, CRC_OFFSET, batch_crc(batch, 0, len(batch)))
    return batch


def decode_batches(
    buf: bytes | bytearray | memoryview, *, verify_crc: bool = True
) -> list[tuple[BatchHeader, list[Record]]]:
    """Every whole batch in ``buf`` with its records (decompressed).

    A trailing partial batch is ignored, as consumers do with fetch responses (Kafka may cut the last
    batch short). ``InvalidRecordError`` for a bad magic, length, CRC or record encoding.
    """
    data = bytes(buf)
    out: list[tuple[BatchHeader, list[Record]]] = []
    pos = 0
    while len(data) - pos >= BATCH_HEADER_SIZE:
        header = read_header(data, pos)
        if header.magic != CURRENT_MAGIC:
            raise InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, f"batch at {pos} has magic {header.magic}")
        if header.batch_length < MIN_BATCH_LENGTH:
            raise InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, f"batch at {pos} is {header.size} bytes")
        end = pos + header.size
        if end > len(data):
            break
        if verify_crc and batch_crc(data, pos, header.size) != header.crc:
            raise InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, f"batch at {pos} fails its CRC")
        body = decompress(header.compression, memoryview(data)[pos + BATCH_HEADER_SIZE : end])
        log_append_time = header.max_timestamp if header.timestamp_type else None
        records = decode_records(
            body, header.records_count, header.base_offset, header.base_timestamp, log_append_time
        )
        out.append((header, records))
        pos = end
    return out


def decode_batch(buf: bytes | bytearray | memoryview, *, verify_crc: bool = True) -> list[Record]:
    """The records of every whole batch in ``buf`` (usually exactly one batch), in order."""
    return [record for _, records in decode_batches(buf, verify_crc=verify_crc) for record in records]
