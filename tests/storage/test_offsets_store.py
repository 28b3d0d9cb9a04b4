"""The committed-offsets store: round trips, crash recovery (torn tail, garbage, damage in the middle),
atomic multi-partition commits, compaction and interrupted compaction."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from riel.config import FlushPolicy
from riel.errors import StorageError
from riel.storage.offsets_store import OFFSETS_DIR, SNAPSHOT_FILE, CommittedOffset, OffsetsStore

NOW = 1_700_000_000_000
ALWAYS = FlushPolicy.parse("always")


def open_store(data_dir: Path, **kw: int) -> OffsetsStore:
    store = OffsetsStore(data_dir, ALWAYS, **kw)
    store.open()
    return store


def journal(data_dir: Path, store: OffsetsStore) -> Path:
    return data_dir / OFFSETS_DIR / f"journal-{store.epoch}"


def state(store: OffsetsStore) -> dict[str, dict[tuple[str, int], CommittedOffset]]:
    return {g: store.group_offsets(g) for g in sorted(store.groups())}


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.commit(
        "g",
        {
            ("t", 0): CommittedOffset(42, 7, "métadonnée", NOW, NOW + 1000),
            ("t", 1): CommittedOffset(0, -1, "", NOW, None),
        },
        NOW,
    )
    store.commit("h", {("u", 3): CommittedOffset(9, -1, "x" * 4096, NOW + 1)}, NOW)
    store.commit("g", {("t", 0): CommittedOffset(43, 7, "", NOW + 2)}, NOW)
    before = state(store)
    store.close()
    again = open_store(tmp_path)
    assert state(again) == before
    assert again.get("g", ("t", 0)) == CommittedOffset(43, 7, "", NOW + 2)
    assert again.get("h", ("u", 3)) == CommittedOffset(9, -1, "x" * 4096, NOW + 1)
    assert again.truncated_bytes == 0
    again.close()


def test_deletions_are_durable(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.commit("g", {("t", 0): CommittedOffset(1), ("t", 1): CommittedOffset(2)}, NOW)
    store.commit("h", {("t", 0): CommittedOffset(3)}, NOW)
    store.delete_offsets("g", [("t", 0), ("t", 9)], NOW)
    store.delete_group("h", NOW)
    store.close()
    again = open_store(tmp_path)
    assert state(again) == {"g": {("t", 1): CommittedOffset(2)}}
    again.close()


def test_deleting_a_topic_forgets_every_groups_offsets_of_it(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.commit("g", {("t", 0): CommittedOffset(1), ("u", 0): CommittedOffset(2)}, NOW)
    store.commit("h", {("t", 1): CommittedOffset(3)}, NOW)
    store.delete_topic_offsets("t", NOW)
    store.delete_topic_offsets("never-committed", NOW)
    assert state(store) == {"g": {("u", 0): CommittedOffset(2)}}
    store.close()
    again = open_store(tmp_path)
    assert again.group_offsets("g") == {("u", 0): CommittedOffset(2)} and again.group_offsets("h") == {}
    again.close()


@pytest.mark.parametrize("cut", [1, 5, 8, 20])
def test_torn_tail_is_truncated_and_later_commits_survive(tmp_path: Path, cut: int) -> None:
    store = open_store(tmp_path)
    store.commit("g", {("t", 0): CommittedOffset(1)}, NOW)
    good = store.journal_bytes
    # One request, three partitions: a torn write must not apply any of them.
    store.commit(
        "g", {("t", 0): CommittedOffset(2), ("t", 1): CommittedOffset(2), ("t", 2): CommittedOffset(2)}, NOW
    )
    path = journal(tmp_path, store)
    store.close()
    with open(path, "r+b") as f:
        f.truncate(good + cut)  # a crash in the middle of the second write
    again = open_store(tmp_path)
    assert state(again) == {"g": {("t", 0): CommittedOffset(1)}}
    assert again.truncated_bytes == cut and path.stat().st_size == good
    again.commit("g", {("t", 5): CommittedOffset(5)}, NOW)
    again.close()
    third = open_store(tmp_path)
    assert state(third) == {"g": {("t", 0): CommittedOffset(1), ("t", 5): CommittedOffset(5)}}
    third.close()


def test_garbage_after_the_last_frame_is_dropped(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.commit("g", {("t", 0): CommittedOffset(1)}, NOW)
    store.commit("g", {("t", 1): CommittedOffset(2)}, NOW)
    path = journal(tmp_path, store)
    store.close()
    with open(path, "ab") as f:
        f.write(os.urandom(100))
        f.write(b"\xff" * 8)  # a frame header claiming an absurd length
    again = open_store(tmp_path)
    assert state(again) == {"g": {("t", 0): CommittedOffset(1), ("t", 1): CommittedOffset(2)}}
    assert again.truncated_bytes == 108
    again.close()


def test_damage_in_the_middle_keeps_the_valid_prefix(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.commit("g", {("t", 0): CommittedOffset(1)}, NOW)
    first = store.journal_bytes
    store.commit("g", {("t", 1): CommittedOffset(2)}, NOW)
    store.commit("g", {("t", 2): CommittedOffset(3)}, NOW)
    path = journal(tmp_path, store)
    store.close()
    raw = bytearray(path.read_bytes())
    raw[first + 12] ^= 0x40  # inside the second frame's payload: its CRC no longer matches
    path.write_bytes(bytes(raw))
    again = open_store(tmp_path)
    # Like Kafka's log recovery: everything from the first bad frame on is gone.
    assert state(again) == {"g": {("t", 0): CommittedOffset(1)}}
    again.close()


def test_compaction_bounds_the_journal_and_keeps_the_state(tmp_path: Path) -> None:
    store = open_store(tmp_path, compact_min_bytes=2_000)
    for i in range(500):
        store.commit(f"g{i % 3}", {("t", i % 4): CommittedOffset(i, -1, "m", NOW + i)}, NOW)
        if i % 50 == 0:
            store.delete_offsets("g0", [("t", 0)], NOW)
    assert store.epoch > 1
    assert store.journal_bytes < 4_000
    files = sorted(p.name for p in (tmp_path / OFFSETS_DIR).iterdir())
    assert files == [f"journal-{store.epoch}", SNAPSHOT_FILE]
    before = state(store)
    store.close()
    again = open_store(tmp_path, compact_min_bytes=2_000)
    assert state(again) == before
    again.close()


def test_interrupted_compaction_is_finished_at_open(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.commit("g", {("t", 0): CommittedOffset(1)}, NOW)
    store.commit("g", {("t", 0): CommittedOffset(2)}, NOW)
    old = journal(tmp_path, store)
    saved = tmp_path / "saved-journal"
    shutil.copy(old, saved)
    store.compact()  # snapshot of epoch 1, journal-1, journal-0 removed
    store.commit("g", {("t", 1): CommittedOffset(7)}, NOW)
    store.close()
    # A crash before journal-0 was removed leaves it behind; it is already in the snapshot.
    shutil.copy(saved, old)
    (tmp_path / OFFSETS_DIR / "snapshot.tmp").write_bytes(b"half a snapshot")
    again = open_store(tmp_path)
    assert state(again) == {"g": {("t", 0): CommittedOffset(2), ("t", 1): CommittedOffset(7)}}
    assert not old.exists() and not (tmp_path / OFFSETS_DIR / "snapshot.tmp").exists()
    again.close()


def test_damaged_snapshot_is_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.commit("g", {("t", 0): CommittedOffset(1)}, NOW)
    store.compact()
    store.close()
    snapshot = tmp_path / OFFSETS_DIR / SNAPSHOT_FILE
    raw = bytearray(snapshot.read_bytes())
    raw[-1] ^= 0xFF
    snapshot.write_bytes(bytes(raw))
    with pytest.raises(StorageError, match="damaged"):
        open_store(tmp_path)
    snapshot.write_bytes(b"NOPE" + bytes(raw[4:]))
    with pytest.raises(StorageError, match="not a Riel offsets snapshot"):
        open_store(tmp_path)


def test_interval_flush_policy_reports_when_a_flush_is_due(tmp_path: Path) -> None:
    store = OffsetsStore(tmp_path, FlushPolicy.parse("interval:100:1000"))
    store.open()
    assert store.next_flush_ms() is None
    store.commit("g", {("t", 0): CommittedOffset(1)}, NOW)
    assert store.next_flush_ms() == NOW + 1000
    store.flush_if_due(NOW + 999)
    assert store.next_flush_ms() == NOW + 1000
    store.flush_if_due(NOW + 1000)
    assert store.next_flush_ms() is None
    store.close()


def test_writes_after_close_are_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.close()
    with pytest.raises(StorageError):
        store.commit("g", {("t", 0): CommittedOffset(1)}, NOW)
