"""Reading messages out of a partition log: raw bytes under the log's lock, decoding outside it."""

from __future__ import annotations

from riel.client.api import Message
from riel.client.codecs import BytesCodec, Codec
from riel.errors import ErrorCode
from riel.records.batch_header import BATCH_HEADER_SIZE, batch_crc, read_header
from riel.records.compression import decompress
from riel.records.errors import InvalidRecordError
from riel.records.fast_records import decode_records
from riel.storage.partition_log import PartitionLog

FETCH_BYTES = 1024 * 1024  # per partition read: big enough to amortise, small enough to stay fair


def read_raw(plog: PartitionLog, offset: int, max_bytes: int = FETCH_BYTES) -> bytes | None:
    """Whole batches from the one holding ``offset`` (None at the visible end). Call under the log's
    lock; raises ``KafkaApiError(OFFSET_OUT_OF_RANGE)`` like ``PartitionLog.read``."""
    found = plog.read(offset, max_bytes)
    if found is None:
        return None
    with found:
        return found.read_bytes()


def decode_messages(data: bytes, topic: str, partition: int, min_offset: int) -> tuple[list[Message], int]:
    """The messages at or after ``min_offset`` in ``data`` (whole batches, CRC-checked) and the offset
    after the last batch. Control batches (transaction markers) are skipped, as consumers do."""
    out: list[Message] = []
    next_offset = min_offset
    pos = 0
    total = len(data)
    view = memoryview(data)
    while total - pos >= BATCH_HEADER_SIZE:
        header = read_header(data, pos)
        end = pos + header.size
        if end > total:
            break
        if batch_crc(data, pos, header.size) != header.crc:
            raise InvalidRecordError(
                ErrorCode.CORRUPT_MESSAGE,
                f"{topic}-{partition}: the batch at offset {header.base_offset} fails its CRC; "
                "run the data directory's check or restore it from a copy",
            )
        next_offset = header.next_offset
        if not header.is_control:
            body: bytes | memoryview = view[pos + BATCH_HEADER_SIZE : end]
            if header.compression:
                body = decompress(header.compression, body)
            out += decode_records(
                body,
                header.records_count,
                header.base_offset,
                header.base_timestamp,
                header.max_timestamp if header.timestamp_type else None,
                topic,
                partition,
                min_offset,
                Message,
            )
        pos = end
    return out, next_offset


def decode_with(message: Message, key_codec: Codec, value_codec: Codec) -> Message:
    """``message`` with key and value through the codecs (the same object for plain bytes)."""
    if isinstance(key_codec, BytesCodec) and isinstance(value_codec, BytesCodec):
        return message
    key, value = message.key, message.value
    return Message(
        message.topic,
        message.partition,
        message.offset,
        message.timestamp,
        None if key is None else key_codec.decode(key),
        None if value is None else value_codec.decode(value),
        message.headers,
    )
