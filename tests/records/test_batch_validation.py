"""The hot-path header functions: parse, validate what Kafka validates, patch offsets and timestamps."""

from __future__ import annotations

import struct

import crc32c
import pytest
from kafka.record.default_records import DefaultRecordBatch

from riel.errors import ErrorCode, KafkaApiError
from riel.records import (
    BATCH_HEADER_SIZE,
    RECORDS_COUNT_OFFSET,
    InvalidRecordError,
    Record,
    decode_batch,
    encode_batch,
    patch_base_offset,
    read_header,
    set_log_append_time,
    validate_batches,
)
from riel.records.batch_header import CRC_OFFSET, increment_sequence

MAX = 1_048_588


def make(count: int = 3, **kwargs: int) -> bytearray:
    records = [Record(0, 1000 + i, b"k%d" % i, b"value-%d" % i) for i in range(count)]
    return bytearray(encode_batch(records, **kwargs))  # type: ignore[arg-type]


def recrc(buf: bytearray, pos: int = 0) -> None:
    """Make a hand-edited batch pass its CRC again, to reach the checks behind the CRC."""
    size = struct.unpack_from(">i", buf, pos + 8)[0] + 12
    struct.pack_into(">I", buf, pos + CRC_OFFSET, crc32c.crc32c(bytes(buf[pos + 21 : pos + size])))


def expect(code: ErrorCode, buf: bytes | bytearray, max_bytes: int = MAX) -> InvalidRecordError:
    with pytest.raises(InvalidRecordError) as info:
        validate_batches(memoryview(buf), max_bytes)
    assert info.value.code == code, info.value
    return info.value


def test_constants_match_the_wire_layout() -> None:
    buf = make(7)
    assert BATCH_HEADER_SIZE == 61
    assert struct.unpack_from(">i", buf, RECORDS_COUNT_OFFSET)[0] == 7


def test_read_header_fields_and_properties() -> None:
    buf = make(4, base_offset=100, producer_id=9, producer_epoch=2, base_sequence=10, compression=1)
    header = read_header(buf)
    assert (header.base_offset, header.magic, header.records_count, header.last_offset_delta) == (
        100,
        2,
        4,
        3,
    )
    assert header.size == len(buf) and header.batch_length == len(buf) - 12
    assert header.last_offset == 103 and header.next_offset == 104
    assert header.compression == 1 and header.timestamp_type == 0
    assert not header.is_transactional and not header.is_control
    assert (header.producer_id, header.producer_epoch, header.base_sequence, header.last_sequence) == (
        9,
        2,
        10,
        13,
    )
    assert (header.base_timestamp, header.max_timestamp) == (1000, 1003)
    assert header.crc == crc32c.crc32c(bytes(buf[21:]))


def test_read_header_short_buffer_is_an_invalid_record_not_a_struct_error() -> None:
    with pytest.raises(InvalidRecordError) as info:
        read_header(make()[:60])
    assert info.value.code == ErrorCode.CORRUPT_MESSAGE
    assert isinstance(info.value, KafkaApiError)


def test_sequences_wrap_like_kafka() -> None:
    assert increment_sequence(2**31 - 1, 1) == 0
    assert increment_sequence(2**31 - 2, 3) == 1
    assert increment_sequence(-1, 5) == -1
    assert read_header(make(3, producer_id=1, producer_epoch=0, base_sequence=2**31 - 2)).last_sequence == 0


def test_valid_batches_back_to_back() -> None:
    buf = make(1) + make(5) + make(2, compression=1)
    headers = validate_batches(buf, MAX)
    assert [h.records_count for h in headers] == [1, 5, 2]


def test_empty_request_is_rejected() -> None:
    expect(ErrorCode.INVALID_RECORD, b"")


def test_bad_crc() -> None:
    buf = make()
    buf[-1] ^= 0x01
    expect(ErrorCode.CORRUPT_MESSAGE, buf)


def test_crc_error_in_second_batch() -> None:
    second = make()
    second[70] ^= 0x40
    expect(ErrorCode.CORRUPT_MESSAGE, make() + second)


@pytest.mark.parametrize("cut", [1, 30, 60])
def test_trailing_partial_header(cut: int) -> None:
    expect(ErrorCode.CORRUPT_MESSAGE, make() + make()[:cut])


def test_trailing_partial_batch_body() -> None:
    expect(ErrorCode.CORRUPT_MESSAGE, make() + make()[:-1])


@pytest.mark.parametrize("length", [-5, 0, 48, 10**9])
def test_impossible_batch_length(length: int) -> None:
    buf = make()
    struct.pack_into(">i", buf, 8, length)
    expect(ErrorCode.CORRUPT_MESSAGE, buf)


def test_magic_other_than_2() -> None:
    buf = make()
    buf[16] = 1
    expect(ErrorCode.INVALID_RECORD, buf)


def test_too_large_counts_the_whole_batch() -> None:
    buf = make()
    validate_batches(buf, len(buf))
    error = expect(ErrorCode.MESSAGE_TOO_LARGE, buf, len(buf) - 1)
    assert str(len(buf)) in error.message


def test_control_batch_from_a_client() -> None:
    buf = bytearray(
        encode_batch(
            [Record(0, 1, b"\x00\x00\x00\x00", b"")],
            is_control=True,
            producer_id=1,
            producer_epoch=0,
            base_sequence=0,
            is_transactional=True,
        )
    )
    expect(ErrorCode.INVALID_RECORD, buf)


@pytest.mark.parametrize(("count", "last_delta"), [(0, -1), (3, 3), (3, 1), (-1, -2)])
def test_inconsistent_count_and_last_offset_delta(count: int, last_delta: int) -> None:
    buf = make(3)
    struct.pack_into(">i", buf, 23, last_delta)
    struct.pack_into(">i", buf, 57, count)
    recrc(buf)
    expect(ErrorCode.INVALID_RECORD, buf)


def test_unknown_compression_codec() -> None:
    buf = make()
    struct.pack_into(">h", buf, 21, 5)
    recrc(buf)
    expect(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, buf)


def test_producer_id_without_sequence() -> None:
    expect(ErrorCode.INVALID_RECORD, make(producer_id=5, producer_epoch=0, base_sequence=-1))


def test_no_producer_id_with_a_sequence_is_a_plain_batch() -> None:
    # aiokafka and kafkajs send producerId=-1 with baseSequence=0.
    assert validate_batches(make(producer_id=-1, base_sequence=0), MAX)[0].producer_id == -1


def test_transactional_without_producer_id() -> None:
    expect(ErrorCode.INVALID_RECORD, make(is_transactional=True))


def test_patch_base_offset_keeps_the_crc_valid() -> None:
    buf = make(3) + make(2)
    patch_base_offset(buf, 0, 1234)
    second = read_header(buf).size
    patch_base_offset(buf, second, 1237)
    headers = validate_batches(buf, MAX)
    assert [h.base_offset for h in headers] == [1234, 1237]
    assert [r.offset for r in decode_batch(buf)] == [1234, 1235, 1236, 1237, 1238]


@pytest.mark.parametrize("compression", [0, 1, 4])
def test_log_append_time_sets_type_and_max_timestamp_and_recomputes_crc(compression: int) -> None:
    first = make(2)
    buf = first + make(3, compression=compression)
    pos = len(first)
    old_crc = read_header(buf, pos).crc
    new_crc = set_log_append_time(buf, pos, 777_777)
    header = read_header(buf, pos)
    assert header.timestamp_type == 1 and header.max_timestamp == 777_777 and header.crc == new_crc != old_crc
    assert header.compression == compression
    assert new_crc == crc32c.crc32c(bytes(buf[pos + 21 : pos + header.size]))
    assert header.base_timestamp == 1000  # untouched, as in Kafka
    validate_batches(buf, MAX)
    # An independent implementation agrees: CRC valid, every record reports the append time.
    kafka_batch = DefaultRecordBatch(bytes(buf[pos:]))
    assert kafka_batch.validate_crc()
    assert [r.timestamp for r in kafka_batch] == [777_777] * 3
    assert [r.timestamp for r in decode_batch(buf[pos:])] == [777_777] * 3
