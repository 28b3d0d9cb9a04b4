"""Crash recovery: torn and garbled tails, damaged or missing indexes, leftovers of interrupted work.

Every test breaks the files by hand, reopens, and checks that exactly the valid prefix survives and
that offsets continue from it without a gap.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from riel.records import decode_batch, read_header
from riel.storage import PartitionLog
from riel.storage.offset_index import OffsetIndex

from .helpers import NOW_MS, batch, open_log, read_all, values

SEGMENT = "00000000000000000000"


def build(directory: Path, sizes: list[int], *, clean: bool, **configs: Any) -> list[int]:
    """A closed log with one batch per entry of ``sizes`` (record counts); returns batch end positions."""
    plog = open_log(directory, **configs)
    for i, count in enumerate(sizes):
        plog.append(batch(count, value=b"b%d-" % i, timestamp=NOW_MS + 10 * i), NOW_MS)
    plog.close(clean=clean)
    ends, position = [], 0
    for path in sorted(directory.glob("*.log")):
        data = path.read_bytes()
        position = 0
        while position < len(data):
            position += read_header(data, position).size
            ends.append(position)
    return ends


def reopen(directory: Path, *, clean: bool = False, **configs: Any) -> PartitionLog:
    return open_log(directory, clean_shutdown=clean, **configs)


def assert_continues(plog: PartitionLog, expected_end: int) -> None:
    """High watermark as expected, every offset readable, and a new append gets the next offset."""
    assert plog.high_watermark == expected_end
    assert [r.offset for r in read_all(plog)] == list(range(plog.log_start_offset, expected_end))
    assert plog.append(batch(1, value=b"after"), NOW_MS).base_offset == expected_end
    assert [r.offset for r in read_all(plog)] == list(range(plog.log_start_offset, expected_end + 1))
    assert read_all(plog)[-1].value == b"after0"


@pytest.mark.parametrize("clean_marker", [False, True], ids=["killed", "marker-lies"])
def test_truncation_at_every_byte_keeps_exactly_the_whole_batches(tmp_path: Path, clean_marker: bool) -> None:
    template = tmp_path / "template"
    counts = [2, 1, 3]
    ends = build(template, counts, clean=clean_marker, index_interval_bytes=0)
    offsets_after = [sum(counts[: i + 1]) for i in range(len(counts))]
    for cut in range(ends[-1]):
        case = tmp_path / f"cut{cut}"
        shutil.copytree(template, case)
        os.truncate(case / f"{SEGMENT}.log", cut)
        plog = reopen(case, clean=clean_marker, index_interval_bytes=0)
        whole = sum(1 for end in ends if end <= cut)
        expected_end = offsets_after[whole - 1] if whole else 0
        assert (case / f"{SEGMENT}.log").stat().st_size == (ends[whole - 1] if whole else 0), cut
        assert_continues(plog, expected_end)
        plog.close(clean=False)  # cheap: no fsyncs, and the directory is left for pytest to clean


@pytest.mark.parametrize("victim", [0, 1, 2])
def test_garbled_byte_truncates_from_that_batch(tmp_path: Path, victim: int) -> None:
    directory = tmp_path / "p"
    ends = build(directory, [1, 1, 1], clean=False)
    start = ends[victim - 1] if victim else 0
    path = directory / f"{SEGMENT}.log"
    data = bytearray(path.read_bytes())
    data[start + 70] ^= 0x5A  # inside the records, covered by the CRC
    path.write_bytes(bytes(data))
    assert_continues(reopen(directory), victim)


def test_zero_filled_tail_is_cut_off(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    ends = build(directory, [2, 2], clean=False)
    with open(directory / f"{SEGMENT}.log", "ab") as f:
        f.write(b"\x00" * 4096)  # what a filesystem may show after power loss
    plog = reopen(directory)
    assert (directory / f"{SEGMENT}.log").stat().st_size == ends[-1]
    assert_continues(plog, 4)


def test_garbage_tail_after_clean_close_is_caught_by_the_clean_checks(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, [1, 1], clean=True)
    with open(directory / f"{SEGMENT}.log", "ab") as f:
        f.write(os.urandom(100))
    assert_continues(reopen(directory, clean=True), 2)


def test_clean_open_crc_checks_only_the_tail_after_the_last_index_entry(tmp_path: Path) -> None:
    """Documented trade-off: after a clean shutdown only the unindexed tail of the active segment is
    CRC-checked, so silent bit rot earlier in a segment is found only by an unclean (full) recovery."""
    directory = tmp_path / "p"
    ends = build(directory, [1] * 6, clean=True, index_interval_bytes=100)
    path = directory / f"{SEGMENT}.log"
    data = bytearray(path.read_bytes())
    data[ends[0] + 70] ^= 0x01  # batch 1, well before the last index entry
    path.write_bytes(bytes(data))
    clean = reopen(directory, clean=True, index_interval_bytes=100)
    assert clean.high_watermark == 6  # not noticed
    clean.close(clean=False)
    assert_continues(reopen(directory, clean=False, index_interval_bytes=100), 1)


def test_bad_crc_in_the_tail_after_a_clean_close_triggers_a_full_recovery(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    ends = build(directory, [1] * 6, clean=True, index_interval_bytes=100)
    path = directory / f"{SEGMENT}.log"
    data = bytearray(path.read_bytes())
    data[ends[-2] + 70] ^= 0x01  # batch 5, after the last index entry
    path.write_bytes(bytes(data))
    assert_continues(reopen(directory, clean=True, index_interval_bytes=100), 5)


def test_recovery_of_a_multi_segment_log_drops_segments_after_the_damage(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    one = len(batch(1, value=b"b0-"))
    build(directory, [1] * 10, clean=False, segment_bytes=one * 2)
    assert len(list(directory.glob("*.log"))) == 5
    # Pretend the last checkpoint was written long ago: recovery must start at the first segment.
    (directory / "checkpoint.json").write_text(json.dumps({"recovery_point": 0, "log_start_offset": 0}))
    victim = directory / "00000000000000000004.log"
    data = bytearray(victim.read_bytes())
    data[one + 70] ^= 0xFF  # second batch of segment 4 = offset 5
    victim.write_bytes(bytes(data))
    plog = reopen(directory, segment_bytes=one * 2)
    assert plog.segment_base_offsets() == [0, 2, 4]
    assert not (directory / "00000000000000000006.log").exists()
    assert not (directory / "00000000000000000006.index").exists()
    assert_continues(plog, 5)


def test_unclean_open_validates_only_from_the_recovery_point_segment(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    one = len(batch(1, value=b"b0-"))
    build(directory, [1] * 6, clean=False, segment_bytes=one * 2)
    checkpoint = json.loads((directory / "checkpoint.json").read_text())
    assert checkpoint["recovery_point"] == 4  # persisted by the last roll
    sealed = directory / f"{SEGMENT}.log"
    data = bytearray(sealed.read_bytes())
    data[70] ^= 0xFF  # rot below the recovery point is not looked for (Kafka's behaviour too)
    sealed.write_bytes(bytes(data))
    active = directory / "00000000000000000004.log"
    os.truncate(active, active.stat().st_size - 1)
    plog = reopen(directory, segment_bytes=one * 2)
    assert plog.high_watermark == 5
    assert plog.segment_base_offsets() == [0, 2, 4]


@pytest.mark.parametrize("clean", [False, True])
@pytest.mark.parametrize("damage", ["garbage", "delete", "shifted", "truncated-entry", "beyond-file"])
def test_damaged_offset_index_of_the_active_segment_is_rebuilt(
    tmp_path: Path, clean: bool, damage: str
) -> None:
    directory = tmp_path / "p"
    build(directory, [1] * 40, clean=clean, index_interval_bytes=100)
    index_path = directory / f"{SEGMENT}.index"
    good = index_path.read_bytes()
    assert len(good) >= 16
    _damage_index(index_path, damage)
    plog = reopen(directory, clean=clean, index_interval_bytes=100)
    assert index_path.read_bytes() == good
    for offset in range(40):
        with plog.read(offset, 1) as chunk:  # type: ignore[union-attr]
            assert decode_batch(chunk.read_bytes())[0].offset == offset
    assert_continues(plog, 40)


@pytest.mark.parametrize("damage", ["garbage", "delete", "shifted", "truncated-entry", "beyond-file"])
def test_damaged_index_of_a_sealed_segment_is_rebuilt_when_first_used(tmp_path: Path, damage: str) -> None:
    directory = tmp_path / "p"
    one = len(batch(1, value=b"b0-"))
    build(directory, [1] * 30, clean=True, index_interval_bytes=60, segment_bytes=one * 20)
    index_path = directory / f"{SEGMENT}.index"
    good = index_path.read_bytes()
    _damage_index(index_path, damage)
    plog = reopen(directory, clean=True, index_interval_bytes=60, segment_bytes=one * 20)
    assert len(plog.segment_base_offsets()) == 2
    for offset in range(30):
        with plog.read(offset, 1) as chunk:  # type: ignore[union-attr]
            assert decode_batch(chunk.read_bytes())[0].offset == offset
    assert index_path.read_bytes() == good


def _damage_index(path: Path, damage: str) -> None:
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif damage == "delete":
        path.unlink()
    elif damage == "truncated-entry":
        path.write_bytes(data[:-3])
    else:
        index = OffsetIndex.load(path)
        assert index is not None
        shift = 1 if damage == "shifted" else 10**6
        index.positions = type(index.positions)("i", [p + shift for p in index.positions])
        index.rewrite()


@pytest.mark.parametrize("damage", ["garbage", "delete", "unsorted"])
def test_damaged_time_index_still_answers_timestamp_queries(tmp_path: Path, damage: str) -> None:
    directory = tmp_path / "p"
    one = len(batch(1, value=b"b0-"))
    build(directory, [1] * 30, clean=True, index_interval_bytes=60, segment_bytes=one * 20)
    for path in directory.glob("*.timeindex"):
        data = path.read_bytes()
        if damage == "garbage":
            path.write_bytes(os.urandom(len(data)))
        elif damage == "delete":
            path.unlink()
        else:
            path.write_bytes(data[12:24] + data[:12] + data[24:])
    plog = reopen(directory, clean=True, index_interval_bytes=60, segment_bytes=one * 20)
    # batch i holds one record, offset i, timestamp NOW_MS + 10 * i
    for i in (0, 5, 19, 20, 29):
        assert plog.offset_for_timestamp(NOW_MS + 10 * i) == (i, NOW_MS + 10 * i)
        assert plog.offset_for_timestamp(NOW_MS + 10 * i - 3) == (i, NOW_MS + 10 * i)
    assert plog.offset_for_timestamp(NOW_MS + 291) is None
    assert plog.max_timestamp() == (29, NOW_MS + 290)


def test_leftover_temporary_and_orphan_files_are_removed(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, [1, 1], clean=True)
    (directory / "checkpoint.json.tmp").write_text("half written")
    (directory / "00000000000000000099.index").write_bytes(b"\x00" * 8)
    (directory / "00000000000000000099.timeindex").write_bytes(b"")
    plog = reopen(directory, clean=True)
    assert not (directory / "checkpoint.json.tmp").exists()
    assert not (directory / "00000000000000000099.index").exists()
    assert not (directory / "00000000000000000099.timeindex").exists()
    assert_continues(plog, 2)


def test_segments_below_a_persisted_log_start_are_deleted_at_open(tmp_path: Path) -> None:
    """DeleteRecords persists the new log start before unlinking; a crash in between is finished here."""
    directory = tmp_path / "p"
    one = len(batch(1, value=b"b0-"))
    build(directory, [1] * 7, clean=True, segment_bytes=one * 2)
    (directory / "checkpoint.json").write_text(json.dumps({"recovery_point": 7, "log_start_offset": 5}))
    plog = reopen(directory, clean=True, segment_bytes=one * 2)
    assert plog.segment_base_offsets() == [4, 6]
    assert plog.log_start_offset == 5
    assert values(read_all(plog)) == [b"b5-0", b"b6-0"]


def test_log_start_beyond_the_recovered_end_restarts_empty_there(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, [1] * 3, clean=False)
    (directory / "checkpoint.json").write_text(json.dumps({"recovery_point": 0, "log_start_offset": 10}))
    plog = reopen(directory)
    assert (plog.log_start_offset, plog.high_watermark) == (10, 10)
    assert plog.append(batch(1), NOW_MS).base_offset == 10


def test_unreadable_checkpoint_means_full_recovery(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    ends = build(directory, [1, 1], clean=False)
    (directory / "checkpoint.json").write_text("{not json")
    os.truncate(directory / f"{SEGMENT}.log", ends[-1] - 5)
    assert_continues(reopen(directory), 1)


def test_delete_records_survives_reopen(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    plog = open_log(directory)
    for _ in range(5):
        plog.append(batch(1), NOW_MS)
    plog.delete_records(3)
    plog.close(clean=False)  # the log start is persisted at once, not only at close
    plog = reopen(directory)
    assert plog.log_start_offset == 3
    assert [r.offset for r in read_all(plog)] == [3, 4]
