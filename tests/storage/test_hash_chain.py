"""Hash chain: appends, rolls, reopens and recoveries keep a verifiable chain; tampering is named by offset.

Every corruption test breaks the files of a closed log by hand and checks that ``verify_partition``
fails at exactly the first offset that no longer matches.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from riel.records import read_header
from riel.storage import PartitionLog
from riel.storage.hash_chain import (
    ENTRY,
    HEADER_SIZE,
    RECOVERIES_FILE,
    ZERO_HASH,
    chain_file_name,
    verify_partition,
)

from .helpers import NOW_MS, batch, open_log, read_all

SEGMENT_BYTES = 300  # about three one-record batches per segment


@dataclass(frozen=True)
class StoredBatch:
    offset: int
    segment: int
    position: int
    size: int


def stored_batches(directory: Path) -> list[StoredBatch]:
    """Every batch of every segment, walked from the .log files (the reference for the tests)."""
    found = []
    for path in sorted(directory.glob("*.log")):
        data = path.read_bytes()
        position = 0
        while position < len(data):
            header = read_header(data, position)
            found.append(StoredBatch(header.base_offset, int(path.stem), position, header.size))
            position += header.size
    return found


def reference_head(directory: Path, anchor: bytes = ZERO_HASH) -> bytes:
    """The chain recomputed the simple way: one hash step per batch over all .log files in order."""
    digest = anchor
    for path in sorted(directory.glob("*.log")):
        data = path.read_bytes()
        position = 0
        while position < len(data):
            size = read_header(data, position).size
            digest = hashlib.sha256(digest + data[position : position + size]).digest()
            position += size
    return digest


def build(directory: Path, count: int, *, clean: bool = True, **configs: Any) -> PartitionLog:
    plog = open_log(directory, segment_bytes=SEGMENT_BYTES, **configs)
    for i in range(count):
        plog.append(batch(1 + i % 2, value=b"v%d-" % i, timestamp=NOW_MS + i), NOW_MS + i)
    plog.close(clean=clean)
    return plog


def flip_byte(path: Path, position: int) -> None:
    with open(path, "r+b") as file:
        file.seek(position)
        byte = file.read(1)
        file.seek(position)
        file.write(bytes([byte[0] ^ 0x40]))


def assert_fails_at(directory: Path, offset: int, *, pinned: tuple[int, bytes] | None = None) -> str:
    result = verify_partition(directory, pinned=pinned)
    assert not result.ok, "verify should have failed"
    assert result.first_bad_offset == offset, result.reason
    assert result.reason is not None
    return result.reason


# --------------------------------------------------------------------------------------------------
# A healthy log verifies


def test_append_roll_and_reopen_keep_a_chain_equal_to_the_reference(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 10)
    assert len(list(directory.glob("*.chain"))) > 2, "the test needs several segments"
    result = verify_partition(directory)
    assert result.ok, result.reason
    assert result.batches == 10
    assert result.head_hash == reference_head(directory)
    # Reopen (clean and then unclean) and append more: still one unbroken chain.
    plog = open_log(directory, clean_shutdown=True, segment_bytes=SEGMENT_BYTES)
    plog.append(batch(3), NOW_MS)
    plog.close(clean=False)
    plog = open_log(directory, segment_bytes=SEGMENT_BYTES)
    plog.append(batch(1), NOW_MS)
    result = verify_partition(directory)  # while open: the chain is written with every append
    plog.close()
    assert result.ok, result.reason
    final = verify_partition(directory)
    assert final.ok and final.batches == 12
    assert final.head_hash == reference_head(directory)
    assert final.head_offset == stored_batches(directory)[-1].offset
    assert final.size_bytes == sum(b.size for b in stored_batches(directory))


def test_log_append_time_topics_chain_the_patched_bytes(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 4, message_timestamp_type="LogAppendTime")
    result = verify_partition(directory)
    assert result.ok, result.reason
    assert result.head_hash == reference_head(directory)


def test_corrupting_only_an_index_is_repaired_silently_and_verifies(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 8, index_interval_bytes=0)
    index = sorted(directory.glob("*.index"))[0]
    index.write_bytes(b"\xff" * 16)
    plog = open_log(directory, clean_shutdown=True, segment_bytes=SEGMENT_BYTES, index_interval_bytes=0)
    assert len(read_all(plog)) == sum(1 + i % 2 for i in range(8))
    plog.close()
    assert verify_partition(directory).ok


# --------------------------------------------------------------------------------------------------
# Tampering is named by offset


def test_a_flipped_byte_names_its_batch(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 10)
    victim = stored_batches(directory)[5]
    flip_byte(directory / f"{victim.segment:020d}.log", victim.position + victim.size - 3)
    assert "differs from the chain" in assert_fails_at(directory, victim.offset)


def test_a_removed_middle_segment_names_its_first_offset(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 10)
    bases = sorted({b.segment for b in stored_batches(directory)})
    assert len(bases) >= 3
    for path in directory.glob(f"{bases[1]:020d}.*"):
        path.unlink()
    assert "missing" in assert_fails_at(directory, bases[1])


def test_a_removed_middle_segment_with_renamed_successor_fails_on_the_anchor(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 10)
    bases = sorted({b.segment for b in stored_batches(directory)})
    # Cover the gap: rename the next segment's log to the removed one's name (offsets then overlap
    # nothing), keeping its own chain; its anchor no longer links.
    for path in directory.glob(f"{bases[1]:020d}.*"):
        path.unlink()
    for suffix in (".log", ".chain"):
        os.rename(directory / f"{bases[2]:020d}{suffix}", directory / f"{bases[1]:020d}{suffix}")
    result = verify_partition(directory)
    assert not result.ok
    assert result.first_bad_offset == bases[1]


def test_swapped_batches_name_the_first_one(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 10)
    batches = stored_batches(directory)
    first, second = next((a, b) for a, b in itertools.pairwise(batches) if a.segment == b.segment)
    log_path = directory / f"{first.segment:020d}.log"
    data = bytearray(log_path.read_bytes())
    a = bytes(data[first.position : first.position + first.size])
    b = bytes(data[second.position : second.position + second.size])
    data[first.position : second.position + second.size] = b + a
    log_path.write_bytes(bytes(data))
    assert_fails_at(directory, first.offset)


def test_an_inserted_batch_is_named_where_it_went_in(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 10)
    batches = stored_batches(directory)
    source, target = batches[3], batches[4]
    copied = (directory / f"{source.segment:020d}.log").read_bytes()[
        source.position : source.position + source.size
    ]
    log_path = directory / f"{target.segment:020d}.log"
    data = bytearray(log_path.read_bytes())
    data[target.position : target.position] = copied  # a replayed earlier batch goes in before batch 4
    log_path.write_bytes(bytes(data))
    assert_fails_at(directory, target.offset)


def test_an_edited_chain_entry_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 10)
    batches = stored_batches(directory)
    target = batches[6]
    index = [b for b in batches if b.segment == target.segment].index(target)
    chain_path = directory / chain_file_name(target.segment)
    flip_byte(chain_path, HEADER_SIZE + index * ENTRY.size + ENTRY.size - 1)
    assert_fails_at(directory, target.offset)


def test_an_edited_anchor_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 10)
    bases = sorted({b.segment for b in stored_batches(directory)})
    flip_byte(directory / chain_file_name(bases[2]), HEADER_SIZE - 1)
    assert "anchor" in assert_fails_at(directory, bases[2])
    flip_byte(directory / chain_file_name(0), HEADER_SIZE - 1)
    assert "anchor" in assert_fails_at(directory, 0)


def test_a_truncation_at_a_batch_boundary_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 10)
    last = stored_batches(directory)[-1]
    os.truncate(directory / f"{last.segment:020d}.log", last.position)
    assert "truncated" in assert_fails_at(directory, last.offset)


def test_a_torn_tail_before_any_reopen_is_named_if_chained_and_noted_if_not(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 10, clean=False)
    last = stored_batches(directory)[-1]
    log_path = directory / f"{last.segment:020d}.log"
    intact = log_path.read_bytes()
    # Half a batch that was never chained (a crash mid-write): a note, not a failure.
    log_path.write_bytes(intact + intact[last.position : last.position + last.size // 2])
    result = verify_partition(directory)
    assert result.ok, result.reason
    assert any("incomplete batch" in note for note in result.notes)
    # A chained batch cut in half: a truncation of chained data.
    log_path.write_bytes(intact[: last.position + last.size // 2])
    assert "torn" in assert_fails_at(directory, last.offset)


def test_a_missing_chain_file_fails(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 10)
    bases = sorted({b.segment for b in stored_batches(directory)})
    (directory / chain_file_name(bases[1])).unlink()
    assert "no chain file" in assert_fails_at(directory, bases[1])


# --------------------------------------------------------------------------------------------------
# Retention, recovery and old logs


def test_retention_keeps_the_rest_verifiable_from_the_first_anchor(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 12)
    early = verify_partition(directory)
    early_head = stored_batches(directory)[2]
    pinned_early = (early_head.offset, _hash_at(directory, early_head.offset))
    plog = open_log(directory, clean_shutdown=True, segment_bytes=SEGMENT_BYTES, retention_bytes=400)
    assert plog.apply_retention(NOW_MS) > 0
    plog.close()
    assert not (directory / chain_file_name(0)).exists()
    result = verify_partition(directory)
    assert result.ok, result.reason
    assert result.head_hash == early.head_hash
    assert any("anchored" in note for note in result.notes)
    # A head inside the deleted prefix can no longer be checked, and that is not a failure.
    pinned = verify_partition(directory, pinned=pinned_early)
    assert pinned.ok, pinned.reason
    assert any("retention" in note for note in pinned.notes)


def test_a_torn_tail_truncated_by_recovery_verifies_and_is_recorded(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 10, clean=False)
    before = verify_partition(directory)
    last = stored_batches(directory)[-1]
    os.truncate(directory / f"{last.segment:020d}.log", last.position + last.size - 5)
    plog = open_log(directory, segment_bytes=SEGMENT_BYTES)
    assert plog.log_end_offset == last.offset
    plog.close()
    result = verify_partition(directory)
    assert result.ok, result.reason
    assert result.batches == before.batches - 1
    recoveries = json.loads((directory / RECOVERIES_FILE).read_text())["recoveries"]
    assert recoveries and recoveries[-1]["from_offset"] == last.offset
    # The head exported before the crash is past the end now, but a recorded recovery explains it.
    pinned = verify_partition(directory, pinned=(before.head_offset, before.head_hash))
    assert pinned.ok, pinned.reason
    assert any("recorded recovery" in note for note in pinned.notes)


def test_a_chain_behind_its_log_is_completed_on_open(tmp_path: Path) -> None:
    """A crash between the batch write and the chain write: the batch is valid but unchained."""
    directory = tmp_path / "p"
    build(directory, 10, clean=False)
    expected = verify_partition(directory).head_hash
    active = stored_batches(directory)[-1].segment
    chain_path = directory / chain_file_name(active)
    os.truncate(chain_path, chain_path.stat().st_size - ENTRY.size)
    unopened = verify_partition(directory)
    assert unopened.ok and any("not chained yet" in note for note in unopened.notes)
    open_log(directory, segment_bytes=SEGMENT_BYTES).close()
    result = verify_partition(directory)
    assert result.ok and not result.notes
    assert result.head_hash == expected


def test_a_log_without_chains_gets_them_built_on_open(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 10)
    for path in directory.glob("*.chain"):
        path.unlink()
    assert not verify_partition(directory).ok
    open_log(directory, clean_shutdown=True, segment_bytes=SEGMENT_BYTES).close()
    result = verify_partition(directory)
    assert result.ok, result.reason
    assert result.head_hash == reference_head(directory)
    assert len(json.loads((directory / RECOVERIES_FILE).read_text())["recoveries"]) >= 3


# --------------------------------------------------------------------------------------------------
# Exported heads


def _hash_at(directory: Path, offset: int) -> bytes:
    for path in sorted(directory.glob("*.chain")):
        data = path.read_bytes()
        for entry_offset, _, _, digest in ENTRY.iter_unpack(data[HEADER_SIZE:]):
            if entry_offset == offset:
                return bytes(digest)
    raise AssertionError(f"no chain entry at {offset}")


def test_an_exported_head_still_matches_after_more_appends(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 6)
    head = verify_partition(directory)
    plog = open_log(directory, clean_shutdown=True, segment_bytes=SEGMENT_BYTES)
    for _ in range(5):
        plog.append(batch(2), NOW_MS)
    plog.close()
    result = verify_partition(directory, pinned=(head.head_offset, head.head_hash))
    assert result.ok, result.reason
    assert result.batches == 11


@pytest.mark.parametrize("where", ["before", "at"])
def test_tampering_before_an_exported_head_fails_even_with_a_rebuilt_chain(
    tmp_path: Path, where: str
) -> None:
    """The attacker rewrites a batch *and* rebuilds every chain file: only the exported head notices."""
    directory = tmp_path / "p"
    build(directory, 8)
    head = verify_partition(directory)
    plog = open_log(directory, clean_shutdown=True, segment_bytes=SEGMENT_BYTES)
    plog.append(batch(1), NOW_MS)
    plog.close()
    batches = stored_batches(directory)
    victim = batches[2] if where == "before" else next(b for b in batches if b.offset == head.head_offset)
    flip_byte(directory / f"{victim.segment:020d}.log", victim.position + victim.size - 2)
    for path in directory.glob("*.chain"):
        path.unlink()
    open_log(directory, clean_shutdown=True, segment_bytes=SEGMENT_BYTES).close()  # rebuilds chains
    assert verify_partition(directory).ok  # internally consistent again...
    reason = assert_fails_at(directory, head.head_offset, pinned=(head.head_offset, head.head_hash))
    assert "exported head" in reason  # ...but not with what the auditor pinned


def test_a_truncation_past_an_exported_head_without_a_recovery_fails(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    build(directory, 8)
    head = verify_partition(directory)
    batches = stored_batches(directory)
    bases = sorted({b.segment for b in batches})
    # Remove the newest segment and rewrite the chains so that the rest is consistent.
    for path in directory.glob(f"{bases[-1]:020d}.*"):
        path.unlink()
    result = verify_partition(directory, pinned=(head.head_offset, head.head_hash))
    assert not result.ok
    assert result.first_bad_offset == bases[-1]
    assert result.reason is not None and "no recorded recovery" in result.reason
