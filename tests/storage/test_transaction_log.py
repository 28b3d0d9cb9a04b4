"""Transactions in the partition log: open transactions hold the last stable offset (LSO), markers
close them, ABORT markers fill the aborted-transaction index, and all of it survives restarts (clean
or not), segment rolls, retention and compaction."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from riel.errors import ErrorCode, KafkaApiError
from riel.records import Record, decode_batches, encode_batch
from riel.records.batch_header import read_header
from riel.records.control import ABORT, COMMIT, marker_batch, marker_type
from riel.storage import PartitionLog
from riel.storage.txn_index import AbortedTxn, read_txn_index

from .helpers import NOW_MS, open_log, read_all

A, B = 7001, 7002


def txn_batch(
    pid: int, sequence: int, count: int = 2, *, epoch: int = 0, key: bytes | None = None
) -> bytearray:
    records = [Record(0, NOW_MS, key, f"{pid}-{sequence + i}".encode()) for i in range(count)]
    return bytearray(
        encode_batch(
            records, producer_id=pid, producer_epoch=epoch, base_sequence=sequence, is_transactional=True
        )
    )


def plain(value: bytes = b"plain") -> bytearray:
    return bytearray(encode_batch([Record(0, NOW_MS, None, value)]))


@pytest.fixture
def plog(tmp_path: Path) -> PartitionLog:
    return open_log(tmp_path / "p")


def test_marker_batches_encode_the_kafka_layout() -> None:
    batch = marker_batch(A, 3, True, 5, NOW_MS)
    header = read_header(batch)
    assert header.is_control and header.is_transactional
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (A, 3, -1)
    assert marker_type(batch, 0, len(batch)) == COMMIT
    ((_, records),) = decode_batches(batch)
    assert records[0].key == b"\0\0\0\1" and records[0].value == b"\0\0\0\0\0\5"
    abort = marker_batch(A, 3, False, 0, NOW_MS)
    assert marker_type(abort, 0, len(abort)) == ABORT


def test_open_transactions_hold_the_last_stable_offset(plog: PartitionLog) -> None:
    plog.append(plain(), NOW_MS)  # 0
    assert plog.last_stable_offset == plog.high_watermark == 1
    plog.append(txn_batch(A, 0), NOW_MS)  # 1-2
    plog.append(txn_batch(B, 0), NOW_MS)  # 3-4
    plog.append(plain(), NOW_MS)  # 5
    assert plog.last_stable_offset == 1 and plog.high_watermark == 6
    plog.append_marker(A, 0, True, 0, NOW_MS)  # 6: A commits
    assert plog.last_stable_offset == 3
    plog.append_marker(B, 0, False, 0, NOW_MS)  # 7: B aborts
    assert plog.last_stable_offset == plog.high_watermark == 8
    assert plog.aborted_transactions(0, 8) == [AbortedTxn(B, 3, 7, 8)]
    assert plog.aborted_transactions(8, 8) == []  # the marker is below the fetch offset
    assert plog.aborted_transactions(0, 3) == []  # the transaction starts at the bound
    # Data and markers are all in the log, in order; the markers are control batches.
    assert [r.offset for r in read_all(plog)] == list(range(8))


def test_a_second_transaction_of_the_same_producer_after_a_commit(plog: PartitionLog) -> None:
    plog.append(txn_batch(A, 0), NOW_MS)  # 0-1
    plog.append_marker(A, 0, True, 0, NOW_MS)  # 2
    plog.append(txn_batch(A, 2), NOW_MS)  # 3-4: sequences go on across transactions
    assert plog.last_stable_offset == 3
    plog.append_marker(A, 0, False, 0, NOW_MS)  # 5
    assert plog.aborted_transactions(0, 6) == [AbortedTxn(A, 3, 5, 6)]


def test_a_marker_for_a_producer_that_wrote_nothing_closes_nothing(plog: PartitionLog) -> None:
    plog.append_marker(A, 0, False, 0, NOW_MS)
    assert plog.aborted_transactions(0, 10) == []
    assert plog.last_stable_offset == plog.high_watermark == 1


def test_a_fencing_abort_with_a_bumped_epoch_resets_sequences(plog: PartitionLog) -> None:
    plog.append(txn_batch(A, 0, epoch=0), NOW_MS)
    plog.append_marker(A, 1, False, 0, NOW_MS)  # the coordinator aborts with the bumped epoch
    with pytest.raises(KafkaApiError) as info:
        plog.append(txn_batch(A, 2, epoch=0), NOW_MS)  # the zombie
    assert info.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
    plog.append(txn_batch(A, 0, epoch=1), NOW_MS)  # the new session starts at 0
    with pytest.raises(KafkaApiError) as info:
        plog.append_marker(A, 0, True, 0, NOW_MS)
    assert info.value.code == ErrorCode.INVALID_PRODUCER_EPOCH


def test_producers_may_not_write_control_batches(plog: PartitionLog) -> None:
    with pytest.raises(KafkaApiError) as info:
        plog.append(bytearray(marker_batch(A, 0, True, 0, NOW_MS)), NOW_MS)
    assert info.value.code == ErrorCode.INVALID_RECORD
    with pytest.raises(KafkaApiError) as info:
        plog.append(txn_batch(-1, -1), NOW_MS)
    assert info.value.code == ErrorCode.INVALID_RECORD
    assert plog.log_end_offset == 0


@pytest.mark.parametrize("clean", [True, False], ids=["clean", "crash"])
def test_open_transactions_and_aborts_survive_a_restart(tmp_path: Path, clean: bool) -> None:
    directory = tmp_path / "p"
    plog = open_log(directory, segment_bytes=300)  # several segments
    plog.append(txn_batch(A, 0), NOW_MS)
    for i in range(6):
        plog.append(plain(b"x" * 60 + bytes([i])), NOW_MS)
    plog.append_marker(A, 0, False, 0, NOW_MS)
    plog.append(txn_batch(B, 0), NOW_MS)  # left open
    plog.append(txn_batch(A, 2), NOW_MS)
    plog.append_marker(A, 0, False, 0, NOW_MS)
    aborted, lso, end = plog.aborted_transactions(0, 100), plog.last_stable_offset, plog.log_end_offset
    assert len(aborted) == 2 and len(plog.segment_base_offsets()) > 2
    plog.close(clean=clean)
    if not clean:  # a crash can lose the active segment's index (not fsync'ed): rebuilt from the log
        (directory / f"{plog.segment_base_offsets()[-1]:020d}.txnindex").unlink(missing_ok=True)
    reopened = open_log(directory, segment_bytes=300, clean_shutdown=clean)
    assert reopened.log_end_offset == end
    assert reopened.last_stable_offset == lso
    assert reopened.aborted_transactions(0, 100) == aborted
    reopened.append_marker(B, 0, True, 0, NOW_MS)
    assert reopened.last_stable_offset == reopened.high_watermark
    reopened.close()


def test_retention_takes_the_index_with_its_segment(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    plog = open_log(directory, segment_bytes=200)
    plog.append(txn_batch(A, 0), NOW_MS)
    plog.append_marker(A, 0, False, 0, NOW_MS)
    first = plog.segment_base_offsets()[0]
    for i in range(8):
        plog.append(plain(b"y" * 60 + bytes([i])), NOW_MS)
    assert read_txn_index(directory / f"{first:020d}.txnindex") == [AbortedTxn(A, 0, 2, 3)]
    plog.delete_records(plog.segment_base_offsets()[-1])
    assert plog.aborted_transactions(0, 100) == []
    assert not any(name.endswith(".txnindex") for name in os.listdir(directory))
    plog.close()


def test_compaction_drops_aborted_records_and_keeps_markers_and_the_index(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    plog = open_log(directory, segment_bytes=250, cleanup_policy="compact")
    plog.append(bytearray(encode_batch([Record(0, NOW_MS, b"k", b"committed")])), NOW_MS)  # 0
    plog.append(txn_batch(A, 0, key=b"k"), NOW_MS)  # 1-2: aborted, must not shadow offset 0
    plog.append_marker(A, 0, False, 0, NOW_MS)  # 3
    plog.append(txn_batch(B, 0, key=b"j"), NOW_MS)  # 4-5: committed
    plog.append_marker(B, 0, True, 0, NOW_MS)  # 6
    for i in range(6):
        plog.append(bytearray(encode_batch([Record(0, NOW_MS, b"z", b"z" * 60 + bytes([i]))])), NOW_MS)
    before = plog.aborted_transactions(0, 100)
    assert before == [AbortedTxn(A, 1, 3, 4)]
    assert plog.compact(NOW_MS) is not None
    assert plog.aborted_transactions(0, 100) == before
    batches = decode_batches(b"".join(_raw(plog)))
    assert [h.base_offset for h, _ in batches if h.is_control] == [3, 6]
    kept = {r.offset: r.value for h, records in batches if not h.is_control for r in records}
    assert kept[0] == b"committed" and 1 not in kept and 2 not in kept  # the aborted records are gone
    assert kept[5] == b"7002-1"  # the committed transaction's latest value of key j
    plog.close()
    reopened = open_log(directory, segment_bytes=250, cleanup_policy="compact", clean_shutdown=True)
    assert reopened.aborted_transactions(0, 100) == before
    reopened.close()


def test_compaction_stops_at_the_last_stable_offset(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p", segment_bytes=250, cleanup_policy="compact")
    plog.append(bytearray(encode_batch([Record(0, NOW_MS, b"k", b"old")])), NOW_MS)  # 0
    plog.append(txn_batch(A, 0, key=b"k"), NOW_MS)  # 1-2: still open
    for i in range(8):
        plog.append(bytearray(encode_batch([Record(0, NOW_MS, b"k", b"k" * 60 + bytes([i]))])), NOW_MS)
    assert plog.last_stable_offset == 1 and len(plog.segment_base_offsets()) > 2
    plan = plog.plan_clean(NOW_MS, force=True)
    assert plan is None or all(g.end_offset <= 1 for g in plan.groups)  # nothing undecided is judged
    plog.append_marker(A, 0, True, 0, NOW_MS)
    plan = plog.plan_clean(NOW_MS, force=True)
    assert plan is not None and plan.groups[-1].end_offset > 1
    plog.close()


def _raw(plog: PartitionLog) -> list[bytes]:
    chunks: list[bytes] = []
    offset = plog.log_start_offset
    while offset < plog.high_watermark:
        chunk = plog.read(offset, 1 << 20)
        assert chunk is not None
        data = chunk.read_bytes()
        chunk.close()
        chunks.append(data)
        offset = max(h.next_offset for h, _ in decode_batches(data))
    return chunks
