"""Log compaction in the storage layer: what survives, offsets, the hash chain, crash safety."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from riel.records import Compression, Record, decode_batches, encode_batch
from riel.storage import PartitionLog
from riel.storage.cleaner_jobs import LogCleaner
from riel.storage.hash_chain import RECOVERIES_FILE, verify_partition
from riel.storage.log_cleaner import CLEANED_SUFFIX, SWAP_MANIFEST, run_clean

from .helpers import NOW_MS, open_log

COMPACT = {"segment_bytes": 400, "cleanup_policy": "compact"}
Row = tuple[int, bytes | None, bytes | None, int]  # offset, key, value, timestamp


def put(plog: PartitionLog, key: bytes | None, value: bytes | None, ts: int, codec: int = 0) -> int:
    data = bytearray(encode_batch([Record(0, ts, key, value)], compression=codec))
    return plog.append(data, ts).base_offset


def put_many(
    plog: PartitionLog, rows: list[tuple[bytes | None, bytes | None]], ts: int, codec: int = 0
) -> int:
    records = [Record(0, ts + i, key, value) for i, (key, value) in enumerate(rows)]
    return plog.append(bytearray(encode_batch(records, compression=codec)), ts).base_offset


def rows(plog: PartitionLog) -> list[Row]:
    """Every record the log serves, by reading it the way a consumer does (CRCs checked)."""
    out: list[Row] = []
    offset = plog.log_start_offset
    while offset < plog.log_end_offset:
        found = plog.read(offset, 1 << 20)
        if found is None:
            break
        with found:
            data = found.read_bytes()
        for header, records in decode_batches(data):
            out.extend((r.offset, r.key, r.value, r.timestamp) for r in records if r.offset >= offset)
            offset = header.base_offset + header.last_offset_delta + 1
    return out


def expected_after_compaction(before: list[Row], active_base: int, horizon: int) -> list[Row]:
    latest: dict[bytes, int] = {}
    for offset, key, _, _ in before:
        if offset < active_base and key is not None:
            latest[key] = offset
    return [
        row
        for row in before
        if row[0] >= active_base
        or (row[1] is not None and latest.get(row[1]) == row[0] and (row[2] is not None or row[3] >= horizon))
    ]


def fill(plog: PartitionLog, count: int = 60, keys: int = 5, codec: int = 0) -> None:
    for i in range(count):
        put(plog, b"k%d" % (i % keys), b"v%d" % i, NOW_MS + i, codec)


def test_keeps_latest_per_key_in_sealed_segments_and_never_moves_offsets(tmp_path: Path) -> None:
    plog = open_log(tmp_path, **COMPACT)  # type: ignore[arg-type]
    fill(plog)
    before = rows(plog)
    start, end, bases = plog.log_start_offset, plog.log_end_offset, plog.segment_base_offsets()
    assert len(bases) > 5
    cleaned = plog.compact(NOW_MS + 1000)
    assert cleaned
    after = rows(plog)
    assert after == expected_after_compaction(before, bases[-1], NOW_MS + 1000 - 86_400_000)
    assert len(after) < len(before)
    sealed_keys = [key for offset, key, _, _ in after if offset < bases[-1]]
    assert len(sealed_keys) == len(set(sealed_keys))  # one record per key below the active segment
    assert (plog.log_start_offset, plog.log_end_offset) == (start, end)
    assert plog.segment_base_offsets()[-1] == bases[-1]  # the active segment is never touched
    result = verify_partition(tmp_path)
    assert result.ok, result.reason
    assert result.compacted_segments == len(cleaned)
    kinds = [r["kind"] for r in json.loads((tmp_path / RECOVERIES_FILE).read_text())["recoveries"]]
    assert kinds.count("compacted") == len(cleaned)
    # Appends, reads by offset inside a gap, and a second clean all still work.
    for i in range(30):
        put(plog, b"k%d" % (i % 3), b"w%d" % i, NOW_MS + 100 + i)
    gap = next(o for o in range(start, bases[-1]) if o not in {row[0] for row in after})
    found = plog.read(gap, 1 << 20)
    assert found is not None
    found.close()
    before = rows(plog)
    active = plog.segment_base_offsets()[-1]
    plog.compact(NOW_MS + 2000)
    assert rows(plog) == expected_after_compaction(before, active, 0)
    assert verify_partition(tmp_path).ok
    plog.close()


def test_groups_small_segments_into_one(tmp_path: Path) -> None:
    plog = open_log(tmp_path, **COMPACT)  # type: ignore[arg-type]
    fill(plog, count=80, keys=2)
    segments_before = len(plog.segment_base_offsets())
    plog.compact(NOW_MS + 1000)  # most segments empty out ...
    plog.compact(NOW_MS + 1000)  # ... and the next clean merges them
    assert len(plog.segment_base_offsets()) < segments_before // 2
    assert verify_partition(tmp_path).ok
    before = rows(plog)
    plog.close()
    plog = open_log(tmp_path, **COMPACT)  # type: ignore[arg-type]
    assert rows(plog) == before
    plog.close()


def test_tombstones_stay_until_delete_retention_then_go(tmp_path: Path) -> None:
    plog = open_log(tmp_path, delete_retention_ms=10_000, **COMPACT)  # type: ignore[arg-type]
    put(plog, b"gone", b"v", NOW_MS)
    put(plog, b"kept", b"v", NOW_MS)
    put(plog, b"gone", None, NOW_MS + 1)  # the tombstone
    fill(plog, count=30, keys=3)  # rolls the tombstone into a sealed segment
    plog.compact(NOW_MS + 5_000)
    gone = [row for row in rows(plog) if row[1] == b"gone"]
    assert [(key, value) for _, key, value, _ in gone] == [(b"gone", None)]  # only the tombstone
    plog.compact(NOW_MS + 10_002)  # past delete.retention.ms after the tombstone's timestamp
    assert not [row for row in rows(plog) if row[1] == b"gone"]
    assert [row[2] for row in rows(plog) if row[1] == b"kept"] == [b"v"]
    assert verify_partition(tmp_path).ok
    plog.close()


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.LZ4, Compression.ZSTD, Compression.SNAPPY])
def test_partly_superseded_compressed_batches_are_rewritten(tmp_path: Path, codec: int) -> None:
    pytest.importorskip({Compression.LZ4: "lz4", Compression.ZSTD: "zstandard"}.get(codec, "gzip"))
    plog = open_log(tmp_path, **COMPACT)  # type: ignore[arg-type]
    for round_ in range(6):
        put_many(
            plog, [(b"a", b"a%d" % round_), (b"b%d" % round_, b"x"), (b"c", b"c%d" % round_)], NOW_MS, codec
        )
    before = rows(plog)
    active = plog.segment_base_offsets()[-1]
    plog.compact(NOW_MS + 10)
    after = rows(plog)
    assert after == expected_after_compaction(before, active, 0)
    assert len(after) < len(before)
    for path in sorted(tmp_path.glob("*.log")):
        for header, _ in decode_batches(path.read_bytes()):  # CRCs checked
            assert header.compression == codec
            assert header.records_count <= header.last_offset_delta + 1
    assert verify_partition(tmp_path).ok
    plog.close()


def test_log_append_time_batches_keep_their_timestamps(tmp_path: Path) -> None:
    plog = open_log(tmp_path, message_timestamp_type="LogAppendTime", **COMPACT)  # type: ignore[arg-type]
    for i in range(30):
        put_many(plog, [(b"same", b"%d" % i), (b"k%d" % i, b"x")], NOW_MS + 1000 * i)
    before = {row[0]: row for row in rows(plog)}
    plog.compact(NOW_MS + 10**6)
    after = rows(plog)
    assert after and all(before[row[0]] == row for row in after)  # offsets, values and timestamps
    plog.close()


def test_keyless_records_in_a_topic_switched_to_compaction_are_dropped(tmp_path: Path) -> None:
    plog = open_log(tmp_path, segment_bytes=400)  # type: ignore[arg-type]
    for i in range(20):
        put(plog, None if i % 2 else b"k", b"v%d" % i, NOW_MS + i)
    plog.close()
    plog = open_log(tmp_path, **COMPACT)  # type: ignore[arg-type]
    active = plog.segment_base_offsets()[-1]
    plog.compact(NOW_MS + 100)
    assert [row for row in rows(plog) if row[0] < active and row[1] is None] == []
    plog.close()


def test_not_compacted_topics_and_append_only_topics_are_left_alone(tmp_path: Path) -> None:
    for name, configs in {
        "delete": {"segment_bytes": 400},
        "append-only": {"segment_bytes": 400, "riel_append_only": "true"},
    }.items():
        plog = open_log(tmp_path / name, **configs)  # type: ignore[arg-type]
        fill(plog)
        before = rows(plog)
        assert plog.compact(NOW_MS + 100) is None
        assert plog.plan_clean(NOW_MS + 100, force=True) is None
        assert rows(plog) == before
        plog.close()


def test_exported_heads_after_the_cleaned_range_still_verify(tmp_path: Path) -> None:
    plog = open_log(tmp_path, **COMPACT)  # type: ignore[arg-type]
    fill(plog, count=20)
    early = verify_partition(tmp_path)
    fill(plog, count=40)
    head = verify_partition(tmp_path)
    plog.compact(NOW_MS + 1000)
    later = verify_partition(tmp_path, pinned=(head.head_offset, head.head_hash))
    assert later.ok and later.head_hash == head.head_hash  # the active segment's chain is untouched
    inside = verify_partition(tmp_path, pinned=(early.head_offset, early.head_hash))
    assert inside.ok
    assert any("compacted since" in note for note in inside.notes)
    plog.close()


def test_tampering_with_a_compacted_segment_is_caught(tmp_path: Path) -> None:
    plog = open_log(tmp_path, **COMPACT)  # type: ignore[arg-type]
    fill(plog)
    plog.compact(NOW_MS + 1000)
    plog.close()
    target = next(p for p in sorted(tmp_path.glob("*.log")) if p.stat().st_size > 0)
    data = bytearray(target.read_bytes())
    data[-3] ^= 0xFF
    target.write_bytes(data)
    result = verify_partition(tmp_path)
    assert not result.ok
    assert result.first_bad_offset is not None and result.first_bad_offset >= int(target.stem)


# --------------------------------------------------------------------------------------------------
# Crashes during a clean


def test_crash_before_the_commit_point_leaves_the_old_log(tmp_path: Path) -> None:
    plog = open_log(tmp_path, **COMPACT)  # type: ignore[arg-type]
    fill(plog)
    before = rows(plog)
    plan = plog.plan_clean(NOW_MS + 1000, force=True)
    assert plan is not None
    assert run_clean(plan)  # .cleaned files written, never swapped in
    assert list(tmp_path.glob(f"*{CLEANED_SUFFIX}"))
    plog.close(clean=False)
    plog = open_log(tmp_path, **COMPACT)  # type: ignore[arg-type]
    assert not list(tmp_path.glob(f"*{CLEANED_SUFFIX}"))
    assert rows(plog) == before
    assert verify_partition(tmp_path).ok
    plog.close()


@pytest.mark.parametrize("steps_done", [0, 1, 2])
def test_crash_after_the_commit_point_is_completed_on_open(tmp_path: Path, steps_done: int) -> None:
    plog = open_log(tmp_path, segment_bytes=800, cleanup_policy="compact")  # type: ignore[arg-type]
    fill(plog, count=80, keys=3)
    plog.compact(NOW_MS + 1000)  # empties most segments, so the next plan merges groups
    before = rows(plog)
    plan = plog.plan_clean(NOW_MS + 1000, force=True)
    assert plan is not None
    cleaned = run_clean(plan)
    merged = [group for group in cleaned if len(group.replaces) > 1]
    assert merged
    plog.close(clean=False)
    # What commit_swap does, interrupted: manifest written, then ``steps_done`` of the swap steps.
    manifest = [{"base": g.base, "replaces": list(g.replaces)} for g in cleaned]
    (tmp_path / SWAP_MANIFEST).write_text(json.dumps({"version": 1, "groups": manifest}))
    group = merged[0]
    if steps_done >= 1:  # the other replaced segments deleted
        for base in group.replaces[1:]:
            for suffix in (".log", ".index", ".timeindex", ".chain"):
                (tmp_path / f"{base:020d}{suffix}").unlink(missing_ok=True)
    if steps_done >= 2:  # the chain renamed, not yet the log
        os.replace(
            tmp_path / f"{group.base:020d}.chain{CLEANED_SUFFIX}", tmp_path / f"{group.base:020d}.chain"
        )
    plog = open_log(tmp_path, segment_bytes=800, cleanup_policy="compact")  # type: ignore[arg-type]
    assert not (tmp_path / SWAP_MANIFEST).exists()
    assert not list(tmp_path.glob(f"*{CLEANED_SUFFIX}"))
    assert rows(plog) == before  # the second clean removed nothing more: only segments merged
    assert all(base not in plog.segment_base_offsets() for base in group.replaces[1:])
    result = verify_partition(tmp_path)
    assert result.ok, result.reason
    plog.close()


def test_a_clean_whose_segments_went_meanwhile_is_dropped(tmp_path: Path) -> None:
    plog = open_log(tmp_path, **COMPACT)  # type: ignore[arg-type]
    fill(plog)
    plan = plog.plan_clean(NOW_MS + 1000, force=True)
    assert plan is not None
    cleaned = run_clean(plan)
    first = plan.groups[1].base
    plog.delete_records(first + 1)  # DeleteRecords (or retention) removed the first group meanwhile
    before = rows(plog)
    plog.install_clean(plan, cleaned, NOW_MS + 1000)
    assert not list(tmp_path.glob(f"*{CLEANED_SUFFIX}"))
    assert plog.log_start_offset == first + 1
    after = rows(plog)
    assert {row[0] for row in after} <= {row[0] for row in before}
    assert verify_partition(tmp_path).ok
    plog.close()


# --------------------------------------------------------------------------------------------------
# The scheduler


def test_cleaner_picks_dirty_compacted_logs_and_respects_the_ratio_and_backoff(tmp_path: Path) -> None:
    compacted = open_log(tmp_path / "c", min_cleanable_dirty_ratio="0.9", **COMPACT)  # type: ignore[arg-type]
    plain = open_log(tmp_path / "p", segment_bytes=400)  # type: ignore[arg-type]
    fill(compacted)
    fill(plain)
    plain_before = rows(plain)
    assert compacted.dirty_ratio() == 1.0
    cleaner = LogCleaner(backoff_ms=1000, inline=True)
    cleaner.tick([plain, compacted], NOW_MS)
    assert cleaner.cleans == 1 and cleaner.records_removed > 0
    assert compacted.dirty_ratio() == 0.0
    assert rows(plain) == plain_before
    fill(compacted, count=10)  # a little dirt: below the ratio
    assert 0 < compacted.dirty_ratio() < 0.9
    cleaner.tick([compacted], NOW_MS + 5000)
    assert cleaner.cleans == 1
    fill(compacted, count=200)
    cleaner.tick([compacted], NOW_MS + 5500)  # inside the backoff: nothing
    assert cleaner.cleans == 1
    cleaner.tick([compacted], NOW_MS + 6000)
    assert cleaner.cleans == 2
    compacted.close()
    plain.close()


def test_cleaner_runs_in_a_worker_process(tmp_path: Path) -> None:
    plog = open_log(tmp_path, **COMPACT)  # type: ignore[arg-type]
    fill(plog)
    before = rows(plog)
    active = plog.segment_base_offsets()[-1]
    cleaner = LogCleaner(backoff_ms=10**9)  # the first tick looks for work, later ones only finish it
    cleaner.tick([plog], NOW_MS)
    assert cleaner.busy
    put(plog, b"k0", b"during", NOW_MS + 500)  # appends go on while the worker cleans
    deadline = time.monotonic() + 60
    while cleaner.busy and time.monotonic() < deadline:
        time.sleep(0.05)
        cleaner.tick([plog], NOW_MS)
    assert cleaner.cleans == 1
    assert rows(plog)[:-1] == expected_after_compaction(before, active, 0)
    assert rows(plog)[-1][2] == b"during"
    assert verify_partition(tmp_path).ok
    assert not list(tmp_path.glob("cleaner-*"))
    plog.close()
