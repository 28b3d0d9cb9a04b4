"""Idempotent producers: duplicates, sequence gaps, epochs, and state that survives restarts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from riel.errors import ErrorCode, KafkaApiError
from riel.storage import PartitionLog
from riel.storage.producer_state import ProducerStateManager, snapshot_offsets

from .helpers import NOW_MS, batch, open_log, read_all

PID = 4242


def produce(
    plog: PartitionLog, sequence: int, count: int = 1, *, epoch: int = 0, pid: int = PID
) -> tuple[int, int]:
    result = plog.append(batch(count, producer_id=pid, epoch=epoch, sequence=sequence), NOW_MS)
    return result.base_offset, result.last_offset


def rejected(
    plog: PartitionLog, sequence: int, count: int = 1, *, epoch: int = 0, pid: int = PID
) -> ErrorCode:
    end = plog.high_watermark
    with pytest.raises(KafkaApiError) as info:
        produce(plog, sequence, count, epoch=epoch, pid=pid)
    assert plog.high_watermark == end, "a rejected batch must not be written"
    return info.value.code


@pytest.fixture
def plog(tmp_path: Path) -> PartitionLog:
    return open_log(tmp_path / "p")


def test_in_order_batches_are_appended(plog: PartitionLog) -> None:
    assert produce(plog, 0, 3) == (0, 2)
    assert produce(plog, 3, 2) == (3, 4)
    assert produce(plog, 5) == (5, 5)


def test_retry_of_a_recent_batch_returns_the_original_offsets(plog: PartitionLog) -> None:
    produce(plog, 0, 2)  # offsets 0-1, seq 0-1
    plog.append(batch(3), NOW_MS)  # someone else: offsets 2-4
    produce(plog, 2, 2)  # offsets 5-6, seq 2-3
    assert produce(plog, 0, 2) == (0, 1)
    assert produce(plog, 2, 2) == (5, 6)
    assert plog.high_watermark == 7
    assert len(read_all(plog)) == 7


def test_only_the_last_five_batches_are_remembered(plog: PartitionLog) -> None:
    for seq in range(6):
        produce(plog, seq)
    assert produce(plog, 1) == (1, 1)  # 5th most recent: still a duplicate
    assert rejected(plog, 0) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER  # 6th: forgotten


def test_sequence_gap(plog: PartitionLog) -> None:
    produce(plog, 0, 2)
    assert rejected(plog, 3) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert rejected(plog, 1) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER  # overlaps, not a duplicate range
    assert produce(plog, 2) == (2, 2)


def test_stale_epoch_is_fenced(plog: PartitionLog) -> None:
    produce(plog, 0, epoch=3)
    assert rejected(plog, 1, epoch=2) == ErrorCode.INVALID_PRODUCER_EPOCH


def test_new_epoch_must_start_at_zero_and_resets_sequences(plog: PartitionLog) -> None:
    produce(plog, 0, 5, epoch=1)
    assert rejected(plog, 5, epoch=2) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert produce(plog, 0, epoch=2) == (5, 5)
    assert produce(plog, 1, epoch=2) == (6, 6)
    assert rejected(plog, 5, epoch=1) == ErrorCode.INVALID_PRODUCER_EPOCH
    assert produce(plog, 0, epoch=2) == (5, 5)  # duplicate within the new epoch


def test_unknown_producer_may_start_anywhere(plog: PartitionLog) -> None:
    """As Kafka after its state for the producer expired (retention, DeleteRecords)."""
    assert produce(plog, 1234) == (0, 0)
    assert produce(plog, 1235) == (1, 1)


def test_producers_are_independent(plog: PartitionLog) -> None:
    produce(plog, 0, pid=1)
    produce(plog, 0, pid=2)
    produce(plog, 1, pid=1)
    assert rejected(plog, 2, pid=2) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert produce(plog, 1, pid=2) == (3, 3)


def test_plain_batches_skip_all_checks(plog: PartitionLog) -> None:
    for _ in range(3):
        plog.append(batch(1, producer_id=-1, sequence=0), NOW_MS)  # aiokafka/kafkajs style
    assert plog.high_watermark == 3


def test_sequence_wraps_at_int32_max(plog: PartitionLog) -> None:
    top = 2**31 - 1
    produce(plog, top - 1, 3)  # sequences top-1, top, 0
    assert produce(plog, 1) == (3, 3)


def test_several_batches_of_one_producer_in_one_append(plog: PartitionLog) -> None:
    def two(first: int, second: int) -> bytearray:
        return batch(2, producer_id=PID, epoch=0, sequence=first) + batch(
            1, producer_id=PID, epoch=0, sequence=second
        )

    assert plog.append(two(0, 2), NOW_MS).last_offset == 2
    with pytest.raises(KafkaApiError) as info:
        plog.append(two(3, 6), NOW_MS)
    assert info.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert plog.high_watermark == 3
    assert produce(plog, 3) == (3, 3)


@pytest.mark.parametrize("clean", [True, False], ids=["clean", "killed"])
def test_state_survives_reopen(tmp_path: Path, clean: bool) -> None:
    one = len(batch(1, producer_id=PID, epoch=0, sequence=0))
    plog = open_log(tmp_path / "p", segment_bytes=one * 3)
    for seq in range(8):  # rolls at 3 and 6: snapshots there
        produce(plog, seq, epoch=1)
    produce(plog, 0, epoch=0, pid=7)
    plog.close(clean=clean)
    plog = open_log(tmp_path / "p", segment_bytes=one * 3, clean_shutdown=clean)
    assert produce(plog, 7, epoch=1) == (7, 7)  # duplicate detected after restart
    assert produce(plog, 4, epoch=1) == (4, 4)
    assert rejected(plog, 9, epoch=1) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert rejected(plog, 8, epoch=0) == ErrorCode.INVALID_PRODUCER_EPOCH
    assert produce(plog, 8, epoch=1) == (9, 9)
    assert produce(plog, 0, epoch=0, pid=7) == (8, 8)


def test_snapshots_are_written_at_roll_and_clean_close(tmp_path: Path) -> None:
    one = len(batch(1, producer_id=PID, epoch=0, sequence=0))
    plog = open_log(tmp_path / "p", segment_bytes=one * 2)
    for seq in range(5):
        produce(plog, seq)
    assert snapshot_offsets(tmp_path / "p") == [2, 4]
    plog.close()
    assert snapshot_offsets(tmp_path / "p") == [4, 5]  # the newest two are kept


def test_damaged_snapshot_falls_back_to_replaying_the_log(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p")
    for seq in range(4):
        produce(plog, seq)
    plog.close()
    (snapshot,) = (tmp_path / "p").glob("*.snapshot")
    data = bytearray(snapshot.read_bytes())
    data[-1] ^= 0xFF
    snapshot.write_bytes(bytes(data))
    plog = open_log(tmp_path / "p", clean_shutdown=True)
    assert produce(plog, 3) == (3, 3)
    assert produce(plog, 4) == (4, 4)


def test_retry_of_a_batch_lost_in_a_crash_is_accepted_as_new(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p")
    produce(plog, 0)
    produce(plog, 1)
    produce(plog, 2)
    plog.close()
    log_file = tmp_path / "p" / "00000000000000000000.log"
    os.truncate(log_file, log_file.stat().st_size - 1)  # the batch with sequence 2 is torn
    plog = open_log(tmp_path / "p", clean_shutdown=False)
    assert plog.high_watermark == 2
    assert not any(offset > 2 for offset in snapshot_offsets(tmp_path / "p"))  # stale snapshot removed
    assert produce(plog, 2) == (2, 2)  # neither a duplicate nor out of order
    assert produce(plog, 3) == (3, 3)


def test_snapshot_format_roundtrip_and_damage_detection() -> None:
    state = ProducerStateManager()
    from riel.records import read_header

    for seq in range(7):
        header = read_header(batch(2, producer_id=9, epoch=1, sequence=2 * seq))
        header.base_offset = 100 + 2 * seq
        state.update(header)
    data = state.to_bytes()
    restored = ProducerStateManager.from_bytes(data)
    entry = restored.producers[9]
    assert entry.epoch == 1 and len(entry.batches) == 5
    assert entry.batches[-1].base_offset == 112 and entry.last_sequence == 13
    for bad in (data[:-1], data + b"\x00", b"XXXX" + data[4:], data[:10]):
        with pytest.raises(ValueError):
            ProducerStateManager.from_bytes(bad)


def test_silent_producers_expire_but_not_with_a_transaction_open(plog: PartitionLog) -> None:
    from riel.records import Record, encode_batch
    from riel.storage.producer_state import PRODUCER_ID_EXPIRATION_MS

    produce(plog, 0, pid=1)  # timestamps NOW_MS
    txn = encode_batch([Record(0, NOW_MS, None, b"t")], producer_id=2, producer_epoch=0, base_sequence=0,
                       is_transactional=True)  # fmt: skip
    plog.append(bytearray(txn), NOW_MS)
    state = plog.producer_state
    assert state.expire(NOW_MS + PRODUCER_ID_EXPIRATION_MS - 1) == 0
    assert state.expire(NOW_MS + PRODUCER_ID_EXPIRATION_MS) == 1  # the transactional one stays
    assert set(state.producers) == {2} and state.changed
    # A later batch of the forgotten producer is taken as a new producer's (Kafka does the same).
    assert produce(plog, 7, pid=1) == (2, 2)
