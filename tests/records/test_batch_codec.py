"""encode_batch/decode_batch and the compression framings, checked against kafka-python as an oracle."""

from __future__ import annotations

import gzip
import struct

import cramjam
import lz4.frame  # type: ignore[import-untyped]
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from riel.errors import ErrorCode
from riel.records import Compression, InvalidRecordError, Record, decode_batch, decode_batches, encode_batch
from riel.records.compression import compress, decompress
from riel.records.record_codec import read_varint, write_varint

CODECS = list(Compression)


def sample_records() -> list[Record]:
    return [
        Record(0, 1_000, b"key", b"value", [("h1", b"x"), ("h2", None)]),
        Record(0, 900, None, b"earlier timestamp"),
        Record(0, 5_000, b"", None),
        Record(0, 1_001, b"k" * 300, b"v" * 70_000, [("\u00e9t\u00e9", b"\x00\xff")]),
    ]


def essentials(
    records: list[Record],
) -> list[tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]]:
    return [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in records]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_roundtrip_each_codec(codec: Compression) -> None:
    records = sample_records()
    buf = encode_batch(
        records, base_offset=42, compression=codec, producer_id=7, producer_epoch=3, base_sequence=11
    )
    ((header, decoded),) = decode_batches(buf)
    assert header.compression == codec
    assert (header.base_offset, header.records_count, header.base_timestamp, header.max_timestamp) == (
        42,
        4,
        1000,
        5000,
    )
    expected = [Record(42 + i, r.timestamp, r.key, r.value, r.headers) for i, r in enumerate(records)]
    assert essentials(decoded) == essentials(expected)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_kafka_python_reads_what_we_encode(codec: Compression) -> None:
    records = sample_records()
    buf = encode_batch(records, base_offset=5, compression=codec)
    batch = DefaultRecordBatch(bytes(buf))
    assert batch.validate_crc()
    assert batch.compression_type == codec
    got = [(r.offset, r.timestamp, r.key, r.value, [(k, v) for k, v in r.headers]) for r in batch]
    assert got == essentials(
        [Record(5 + i, r.timestamp, r.key, r.value, r.headers) for i, r in enumerate(records)]
    )


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_we_read_what_kafka_python_encodes(codec: Compression) -> None:
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=codec, is_transactional=False, producer_id=-1, producer_epoch=-1,
        base_sequence=-1, batch_size=1 << 20,
    )  # fmt: skip
    for i in range(50):
        builder.append(
            i, timestamp=2_000 + i, key=None if i % 2 else b"k%d" % i, value=b"x" * 200, headers=[("a", b"b")]
        )
    buf = bytes(builder.build())
    decoded = decode_batch(buf)
    assert [r.offset for r in decoded] == list(range(50))
    assert decoded[4].key == b"k4" and decoded[3].key is None and decoded[10].headers == [("a", b"b")]
    assert [r.timestamp for r in decoded] == [2_000 + i for i in range(50)]


def test_snappy_raw_and_xerial_framings_both_decode() -> None:
    data = b"kafka " * 20_000  # > one 32 KiB xerial block
    xerial = compress(Compression.SNAPPY, data)
    assert xerial.startswith(b"\x82SNAPPY\x00")
    assert decompress(Compression.SNAPPY, xerial) == data
    assert decompress(Compression.SNAPPY, bytes(cramjam.snappy.compress_raw(data))) == data


def test_zstd_frame_without_content_size_and_concatenated_frames() -> None:
    data = b"zstd " * 10_000
    streamed = zstandard.ZstdCompressor(write_content_size=False).compress(data)
    assert decompress(Compression.ZSTD, streamed) == data
    assert decompress(Compression.ZSTD, streamed + streamed) == data + data


def test_lz4_frames_use_independent_blocks() -> None:
    frame = compress(Compression.LZ4, b"lz4 " * 50_000)
    # FLG byte after the 4-byte magic: bit 5 = block independence, which Kafka's Java reader requires.
    assert frame[4] & 0x20
    assert lz4.frame.decompress(frame) == b"lz4 " * 50_000


def test_gzip_is_a_standard_member() -> None:
    assert gzip.decompress(compress(Compression.GZIP, b"abc" * 100)) == b"abc" * 100


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD])
def test_garbage_compressed_data_is_corrupt_message(codec: Compression) -> None:
    with pytest.raises(InvalidRecordError) as info:
        decompress(
            codec,
            b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x10\x00garbage"
            if codec == Compression.SNAPPY
            else b"this is not compressed data at all",
        )
    assert info.value.code == ErrorCode.CORRUPT_MESSAGE


def test_decode_rejects_a_bad_crc_unless_told_not_to() -> None:
    buf = bytearray(encode_batch(sample_records()))
    buf[-1] ^= 1
    with pytest.raises(InvalidRecordError):
        decode_batch(buf)
    assert len(decode_batch(buf, verify_crc=False)) == 4  # the flipped bit is inside a value


def test_decode_ignores_a_trailing_partial_batch_like_consumers_do() -> None:
    one = encode_batch([Record(0, 1, b"a", b"b")])
    two = encode_batch([Record(0, 2, b"c", b"d")], base_offset=1)
    assert [r.value for r in decode_batch(one + two[:-3])] == [b"b"]


def test_record_length_mismatch_is_corrupt() -> None:
    buf = bytearray(encode_batch([Record(0, 1, b"a", b"b")]))
    buf[61] += 2  # first record's length varint (zigzag: +1 byte)
    with pytest.raises(InvalidRecordError):
        decode_batch(buf, verify_crc=False)


def test_encode_needs_records() -> None:
    with pytest.raises(ValueError):
        encode_batch([])


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_varint_roundtrip(value: int) -> None:
    out = bytearray()
    write_varint(out, value)
    assert read_varint(bytes(out), 0) == (value, len(out))


def test_varint_matches_protobuf_zigzag() -> None:
    for value, encoded in [(0, b"\x00"), (-1, b"\x01"), (1, b"\x02"), (-64, b"\x7f"), (64, b"\x80\x01")]:
        out = bytearray()
        write_varint(out, value)
        assert bytes(out) == encoded


records_strategy = st.lists(
    st.builds(
        Record,
        offset=st.just(0),
        timestamp=st.integers(min_value=0, max_value=2**40),
        key=st.none() | st.binary(max_size=50),
        value=st.none() | st.binary(max_size=300),
        headers=st.lists(st.tuples(st.text(max_size=10), st.none() | st.binary(max_size=10)), max_size=3),
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(records_strategy, st.sampled_from(CODECS), st.integers(min_value=0, max_value=2**40))
def test_random_roundtrip_matches_kafka_python(records: list[Record], codec: Compression, base: int) -> None:
    buf = encode_batch(records, base_offset=base, compression=codec)
    ours = essentials(decode_batch(buf))
    assert ours == essentials(
        [Record(base + i, r.timestamp, r.key, r.value, r.headers) for i, r in enumerate(records)]
    )
    theirs = [
        (r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in DefaultRecordBatch(bytes(buf))
    ]
    assert theirs == ours
    assert struct.unpack_from(">q", buf, 35)[0] == max(r.timestamp for r in records)
