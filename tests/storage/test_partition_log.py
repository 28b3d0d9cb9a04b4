"""PartitionLog: offsets, reads, rolls, timestamps, DeleteRecords, flush policy."""

from __future__ import annotations

import os
from pathlib import Path

import crc32c
import pytest

from riel.errors import ErrorCode, KafkaApiError
from riel.records import Record, decode_batch, decode_batches, encode_batch, read_header
from riel.storage import FileSlice, PartitionLog

from .helpers import NOW_MS, batch, open_log, read_all, values


def count_fdatasync(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record every fdatasync (the call flush policies are about) while still doing it."""
    calls: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    return calls


@pytest.fixture
def plog(tmp_path: Path) -> PartitionLog:
    return open_log(tmp_path / "p")


def test_empty_log(plog: PartitionLog) -> None:
    assert (plog.log_start_offset, plog.high_watermark) == (0, 0)
    assert plog.read(0, 1000) is None
    assert plog.max_timestamp() == (-1, -1)
    assert plog.offset_for_timestamp(0) is None


def test_offsets_are_assigned_consecutively(plog: PartitionLog) -> None:
    first = plog.append(batch(3), NOW_MS)
    second = plog.append(batch(1), NOW_MS)
    third = plog.append(batch(2) + batch(4), NOW_MS)  # two batches in one append
    assert (first.base_offset, first.last_offset) == (0, 2)
    assert (second.base_offset, second.last_offset) == (3, 3)
    assert (third.base_offset, third.last_offset) == (4, 9)
    assert first.log_append_time_ms == -1 and first.log_start_offset == 0
    assert plog.high_watermark == 10
    assert [r.offset for r in read_all(plog)] == list(range(10))


def test_batches_are_stored_verbatim_except_the_base_offset(plog: PartitionLog) -> None:
    original = batch(5, compression=1)
    plog.append(bytearray(original), NOW_MS)
    plog.append(bytearray(original), NOW_MS)
    chunk = plog.read(5, 10_000)
    assert chunk is not None
    with chunk:
        stored = chunk.read_bytes()
    assert stored[8:] == original[8:] and read_header(stored).base_offset == 5


def test_rejected_append_writes_nothing(plog: PartitionLog) -> None:
    plog.append(batch(2), NOW_MS)
    bad = batch(1)
    bad[-1] ^= 0xFF
    with pytest.raises(KafkaApiError) as info:
        plog.append(batch(1) + bad, NOW_MS)
    assert info.value.code == ErrorCode.CORRUPT_MESSAGE
    with pytest.raises(KafkaApiError) as info:
        plog.append(bytearray(), NOW_MS)
    assert info.value.code == ErrorCode.INVALID_RECORD
    assert plog.high_watermark == 2 and len(read_all(plog)) == 2


def test_max_message_bytes(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p", max_message_bytes=200)
    plog.append(batch(1), NOW_MS)
    with pytest.raises(KafkaApiError) as info:
        plog.append(batch(1, value=b"x" * 300), NOW_MS)
    assert info.value.code == ErrorCode.MESSAGE_TOO_LARGE


def test_read_slices(plog: PartitionLog) -> None:
    sizes = []
    for i in range(10):
        data = batch(2, value=b"v%d" % i)
        sizes.append(len(data))
        plog.append(data, NOW_MS)
    # Offset in the middle of a batch: the slice starts at that batch.
    chunk = plog.read(5, 10_000)
    assert chunk is not None
    with chunk:
        assert isinstance(chunk, FileSlice) and chunk.position == sum(sizes[:2])
        assert [r.offset for r in decode_batch(chunk.read_bytes())][:2] == [4, 5]
    # max_bytes cuts at whole batches.
    with plog.read(0, sizes[0] + sizes[1] + 5) as chunk:  # type: ignore[union-attr]
        assert chunk.size == sizes[0] + sizes[1]
    # A first batch bigger than max_bytes: whole with min_one (KIP-74), nothing without.
    with plog.read(0, 10) as chunk:  # type: ignore[union-attr]
        assert chunk.size == sizes[0]
    assert plog.read(0, 10, min_one=False) is None
    assert plog.read(plog.high_watermark, 100) is None


def test_read_out_of_range(plog: PartitionLog) -> None:
    plog.append(batch(3), NOW_MS)
    for offset in (-1, 4, 100):
        with pytest.raises(KafkaApiError) as info:
            plog.read(offset, 100)
        assert info.value.code == ErrorCode.OFFSET_OUT_OF_RANGE


def test_reads_use_the_sparse_index_and_stay_inside_one_segment(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p", segment_bytes=5_000, index_interval_bytes=300)
    for i in range(200):
        plog.append(batch(1 + i % 4, value=b"x" * (i % 50)), NOW_MS)
    assert len(plog.segment_base_offsets()) > 5
    expected = read_all(plog, max_bytes=1 << 30)
    assert [r.offset for r in expected] == list(range(plog.high_watermark))
    for offset in range(0, plog.high_watermark, 7):
        chunk = plog.read(offset, 700)
        assert chunk is not None
        with chunk:
            decoded = decode_batches(chunk.read_bytes())
            assert chunk.size <= 700 or len(decoded) == 1
        assert decoded[0][0].base_offset <= offset <= decoded[0][0].last_offset
        # never crosses into the next segment
        segment_base = max(b for b in plog.segment_base_offsets() if b <= offset)
        following = [b for b in plog.segment_base_offsets() if b > segment_base]
        assert not following or decoded[-1][0].last_offset < following[0]
    index_files = sorted((tmp_path / "p").glob("*.index"))
    assert any(path.stat().st_size > 0 for path in index_files)


def test_roll_by_segment_bytes(tmp_path: Path) -> None:
    one = len(batch(1))
    plog = open_log(tmp_path / "p", segment_bytes=one * 3)
    for _ in range(7):
        plog.append(batch(1), NOW_MS)
    assert plog.segment_base_offsets() == [0, 3, 6]
    assert sorted(p.name for p in (tmp_path / "p").glob("*.log")) == [
        "00000000000000000000.log", "00000000000000000003.log", "00000000000000000006.log",
    ]  # fmt: skip
    assert plog.recovery_point >= 6  # a roll always fsyncs the sealed segment


def test_an_oversized_append_goes_alone_into_a_segment(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p", segment_bytes=100)
    plog.append(batch(1, value=b"x" * 500), NOW_MS)
    plog.append(batch(1, value=b"x" * 500), NOW_MS)
    assert plog.segment_base_offsets() == [0, 1]


def test_roll_by_segment_ms_uses_the_first_batch_timestamp(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p", segment_ms=1_000)
    plog.append(batch(1, timestamp=10_000), NOW_MS)
    plog.append(batch(1, timestamp=10_900), NOW_MS)
    assert plog.segment_base_offsets() == [0]
    plog.append(batch(1, timestamp=11_001), NOW_MS)
    assert plog.segment_base_offsets() == [0, 2]


def test_log_append_time_topic(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p", message_timestamp_type="LogAppendTime")
    sent = batch(3, timestamp=5, compression=4)
    original_crc = read_header(sent).crc
    result = plog.append(sent, NOW_MS + 123)
    assert result.log_append_time_ms == NOW_MS + 123
    with plog.read(0, 10_000) as chunk:  # type: ignore[union-attr]
        stored = chunk.read_bytes()
    header = read_header(stored)
    assert header.timestamp_type == 1 and header.max_timestamp == NOW_MS + 123
    assert header.crc != original_crc and header.crc == crc32c.crc32c(stored[21:])
    assert [r.timestamp for r in decode_batch(stored)] == [NOW_MS + 123] * 3
    assert plog.max_timestamp() == (0, NOW_MS + 123)


def test_offset_for_timestamp_is_record_level(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p", segment_bytes=600, index_interval_bytes=100)
    # batch i holds records with timestamps 1000*i + 0..4 ; some compressed.
    for i in range(30):
        records = [Record(0, 1000 * i + j, None, b"r") for j in range(5)]
        plog.append(bytearray(encode_batch(records, compression=i % 5)), NOW_MS)
    assert plog.offset_for_timestamp(0) == (0, 0)
    assert plog.offset_for_timestamp(3002) == (17, 3002)
    assert plog.offset_for_timestamp(3005) == (20, 4000)  # between batches: the next record
    assert plog.offset_for_timestamp(29_004) == (149, 29_004)
    assert plog.offset_for_timestamp(29_005) is None
    assert plog.max_timestamp() == (149, 29_004)


def test_timestamps_out_of_order(plog: PartitionLog) -> None:
    for ts in (500, 100, 900, 300):
        plog.append(batch(1, timestamp=ts), NOW_MS)
    assert plog.offset_for_timestamp(200) == (0, 500)
    assert plog.offset_for_timestamp(600) == (2, 900)
    assert plog.max_timestamp() == (2, 900)


def test_delete_records_moves_start_and_deletes_whole_segments(tmp_path: Path) -> None:
    one = len(batch(1))
    plog = open_log(tmp_path / "p", segment_bytes=one * 2)
    for _ in range(9):
        plog.append(batch(1), NOW_MS)
    assert plog.segment_base_offsets() == [0, 2, 4, 6, 8]
    assert plog.delete_records(5) == 5
    assert plog.segment_base_offsets() == [4, 6, 8]  # segment 4 still holds offset 5
    assert plog.log_start_offset == 5
    with pytest.raises(KafkaApiError):
        plog.read(4, 100)
    assert [r.offset for r in read_all(plog)] == [5, 6, 7, 8]
    assert plog.delete_records(3) == 5  # never moves backwards
    with pytest.raises(KafkaApiError) as info:
        plog.delete_records(10)
    assert info.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    result = plog.append(batch(1), NOW_MS)
    assert result.log_start_offset == 5 and result.base_offset == 9


def test_delete_records_up_to_the_end_keeps_an_empty_active_segment(plog: PartitionLog) -> None:
    for _ in range(3):
        plog.append(batch(2), NOW_MS)
    assert plog.delete_records(6) == 6
    assert plog.segment_base_offsets() == [6]
    assert plog.read(6, 100) is None
    assert plog.append(batch(1), NOW_MS).base_offset == 6
    assert values(read_all(plog)) == [b"value0"]


def test_file_slice_survives_segment_deletion(tmp_path: Path) -> None:
    one = len(batch(1))
    plog = open_log(tmp_path / "p", segment_bytes=one)
    for _ in range(3):
        plog.append(batch(1), NOW_MS)
    chunk = plog.read(0, 1000)
    assert chunk is not None
    plog.delete_records(2)
    assert not (tmp_path / "p" / "00000000000000000000.log").exists()
    assert decode_batch(chunk.read_bytes())[0].offset == 0
    chunk.close()
    chunk.close()  # idempotent
    assert chunk.closed
    with pytest.raises(ValueError):
        chunk.read_bytes()


@pytest.mark.parametrize(
    ("policy", "appends", "expected_syncs"), [("always", 5, 5), ("os", 5, 0), ("interval:4:100000", 5, 1)]
)
def test_flush_policies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str, appends: int, expected_syncs: int
) -> None:
    plog = open_log(tmp_path / "p", flush=policy)
    calls = count_fdatasync(monkeypatch)
    for _ in range(appends):
        plog.append(batch(1), NOW_MS)  # 1 message each
    assert len(calls) == expected_syncs
    if policy == "always":
        assert plog.recovery_point == plog.high_watermark


def test_interval_flush_by_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plog = open_log(tmp_path / "p", flush="interval:1000000:50")
    calls = count_fdatasync(monkeypatch)
    plog.append(batch(1), 1_000)
    plog.append(batch(1), 1_020)
    assert calls == [] and plog.recovery_point == 0
    plog.flush_if_due(1_049)
    assert calls == []
    plog.flush_if_due(1_050)  # the timer a quiet partition relies on
    assert len(calls) == 1 and plog.recovery_point == 2
    plog.append(batch(1), 2_000)
    plog.append(batch(1), 2_060)  # due at append time
    assert len(calls) == 2


def test_checkpoint_persists_recovery_point_and_log_start(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p", flush="always")
    for _ in range(4):
        plog.append(batch(1), NOW_MS)
    plog.delete_records(1)
    plog.checkpoint()
    text = (tmp_path / "p" / "checkpoint.json").read_text()
    assert '"recovery_point": 4' in text and '"log_start_offset": 1' in text
