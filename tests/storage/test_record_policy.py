"""Append-time record policies (``riel.storage.record_policy``) through ``PartitionLog.append``:
keyless records on compacted topics, and CreateTime bounds (KIP-937)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import riel
from riel.errors import ErrorCode, PublishError
from riel.records import Compression, InvalidRecordError, Record, encode_batch
from riel.storage import PartitionLog
from riel.storage.log_config import LogConfig

from .helpers import NOW_MS, batch, config, open_log, read_all

HOUR_MS = 3_600_000

CODECS = [
    pytest.param(Compression.NONE, id="none"),
    pytest.param(Compression.GZIP, id="gzip"),
    pytest.param(Compression.SNAPPY, id="snappy"),
    pytest.param(
        Compression.LZ4,
        id="lz4",
        marks=pytest.mark.skipif(importlib.util.find_spec("lz4") is None, reason="lz4 not installed"),
    ),
    pytest.param(
        Compression.ZSTD,
        id="zstd",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("zstandard") is None, reason="zstandard not installed"
        ),
    ),
]


def records(keys: list[bytes | None], timestamps: list[int] | None = None) -> list[Record]:
    stamps = timestamps if timestamps is not None else [NOW_MS] * len(keys)
    return [Record(0, ts, key, b"v%d" % i) for i, (key, ts) in enumerate(zip(keys, stamps, strict=True))]


def produce(plog: PartitionLog, *batches: bytes | bytearray, now_ms: int = NOW_MS) -> int:
    """Append the batches as one produce request; the base offset assigned."""
    return plog.append(bytearray(b"".join(batches)), now_ms).base_offset


def rejected(plog: PartitionLog, *batches: bytes | bytearray, now_ms: int = NOW_MS) -> InvalidRecordError:
    """Append must fail and leave the log exactly as it was."""
    end, size = plog.log_end_offset, plog.size_bytes()
    with pytest.raises(InvalidRecordError) as failure:
        produce(plog, *batches, now_ms=now_ms)
    assert (plog.log_end_offset, plog.size_bytes()) == (end, size), "a rejected request wrote something"
    return failure.value


# ------------------------------------------------------------------------------------------- config


def test_only_topics_with_a_policy_need_record_checks() -> None:
    assert not config().needs_record_checks
    assert not LogConfig().needs_record_checks
    assert not config(cleanup_policy="delete").needs_record_checks
    assert config(cleanup_policy="compact").needs_record_checks
    assert config(cleanup_policy="compact,delete").needs_record_checks
    assert config(message_timestamp_before_max_ms=HOUR_MS).needs_record_checks
    assert config(message_timestamp_after_max_ms=0).needs_record_checks
    # LogAppendTime topics overwrite timestamps: the bounds do not apply to them.
    assert not config(
        message_timestamp_type="LogAppendTime", message_timestamp_before_max_ms=1
    ).needs_record_checks
    assert LogConfig(compact=True).needs_record_checks  # computed for direct construction too


def test_the_hot_path_does_not_decode_records_of_topics_without_a_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import riel.storage.partition_log as partition_log

    def must_not_run(*args: object) -> None:
        raise AssertionError("record policies checked on a topic without one")

    monkeypatch.setattr(partition_log, "check_record_policies", must_not_run)
    plog = open_log(tmp_path / "p")
    assert produce(plog, batch(2), encode_batch(records([None], [0]))) == 0
    assert plog.log_end_offset == 3
    compacted = open_log(tmp_path / "c", cleanup_policy="compact")
    with pytest.raises(AssertionError, match="record policies checked"):
        produce(compacted, batch(1, key=b"k"))


# -------------------------------------------------------------------------------- keys on compaction


@pytest.mark.parametrize("policy", ["compact", "compact,delete", "delete,compact"])
def test_a_keyless_record_fails_the_whole_request_on_a_compacted_topic(tmp_path: Path, policy: str) -> None:
    plog = open_log(tmp_path / "p", cleanup_policy=policy)
    assert produce(plog, batch(2, key=b"k")) == 0
    # The second batch's third record has no key: both batches of the request are refused.
    error = rejected(plog, encode_batch(records([b"a"])), encode_batch(records([b"b", b"c", None, b"d"])))
    assert error.code == ErrorCode.INVALID_RECORD and int(error.code) == 87
    assert "compacted topic cannot accept a record without a key" in error.message
    assert "offset delta 2 of batch 1" in error.message
    assert [r.key for r in read_all(plog)] == [b"k", b"k"]
    assert produce(plog, encode_batch(records([b"a"]))) == 2  # the log still takes keyed records


@pytest.mark.parametrize("policy", ["compact", "compact,delete"])
def test_keyed_records_are_accepted_on_a_compacted_topic(tmp_path: Path, policy: str) -> None:
    plog = open_log(tmp_path / "p", cleanup_policy=policy)
    assert produce(plog, encode_batch(records([b"a", b"b"])), encode_batch(records([b""]))) == 0
    assert [r.key for r in read_all(plog)] == [b"a", b"b", b""]  # an empty key is a key


def test_keyless_records_are_accepted_on_a_delete_topic(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p", cleanup_policy="delete")
    assert produce(plog, encode_batch(records([None, None, b"k"]))) == 0
    assert [r.key for r in read_all(plog)] == [None, None, b"k"]


def test_tombstones_with_a_key_are_accepted_on_a_compacted_topic(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p", cleanup_policy="compact")
    assert produce(plog, encode_batch([Record(0, NOW_MS, b"gone", None)])) == 0
    assert [(r.key, r.value) for r in read_all(plog)] == [(b"gone", None)]


@pytest.mark.parametrize("codec", CODECS)
def test_compressed_batches_are_checked_inside(tmp_path: Path, codec: int) -> None:
    plog = open_log(tmp_path / "p", cleanup_policy="compact")
    keyless = encode_batch(records([b"a"] * 50 + [None] + [b"z"] * 10), compression=codec)
    error = rejected(plog, keyless)
    assert error.code == ErrorCode.INVALID_RECORD and "offset delta 50 of batch 0" in error.message
    keyed = encode_batch(records([b"a"] * 61), compression=codec)
    assert produce(plog, keyed) == 0 and plog.log_end_offset == 61


def test_a_rejected_idempotent_batch_does_not_advance_the_producer_state(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p", cleanup_policy="compact")
    bad = encode_batch(records([None]), producer_id=7, producer_epoch=0, base_sequence=0)
    rejected(plog, bad)
    good = encode_batch(records([b"k"]), producer_id=7, producer_epoch=0, base_sequence=0)
    assert produce(plog, good) == 0  # sequence 0 is still the expected one
    assert produce(plog, good) == 0  # and a retry of it is a duplicate
    assert plog.log_end_offset == 1


def test_a_corrupt_records_section_on_a_compacted_topic_is_corrupt_message(tmp_path: Path) -> None:
    from riel.records.batch import frame_batch

    plog = open_log(tmp_path / "p", cleanup_policy="compact")
    error = rejected(plog, bytes(frame_batch(b"\x7f\x00garbage", 1, NOW_MS, NOW_MS)))
    assert error.code == ErrorCode.CORRUPT_MESSAGE


# ---------------------------------------------------------------------------------- timestamp bounds


@pytest.mark.parametrize(
    ("offset_ms", "accepted"),
    [(-HOUR_MS - 1, False), (-HOUR_MS, True), (0, True), (HOUR_MS // 2, True), (HOUR_MS // 2 + 1, False)],
)
def test_create_time_bounds(tmp_path: Path, offset_ms: int, accepted: bool) -> None:
    plog = open_log(
        tmp_path / "p", message_timestamp_before_max_ms=HOUR_MS, message_timestamp_after_max_ms=HOUR_MS // 2
    )
    now = NOW_MS + 123
    request = encode_batch(records([None, None], [now, now + offset_ms]))
    if accepted:
        assert produce(plog, request, now_ms=now) == 0
        assert [r.timestamp for r in read_all(plog)] == [now, now + offset_ms]
    else:
        error = rejected(plog, request, now_ms=now)
        assert error.code == ErrorCode.INVALID_TIMESTAMP and int(error.code) == 32
        assert f"timestamp {now + offset_ms} of the record at offset delta 1 of batch 0" in error.message
        name = "before" if offset_ms < 0 else "after"
        bound = HOUR_MS if offset_ms < 0 else HOUR_MS // 2
        assert f"message.timestamp.{name}.max.ms={bound}" in error.message
        assert (
            "fix the producer's clock" in error.message
            and f"raise message.timestamp.{name}.max.ms" in error.message
        )


def test_a_too_old_record_inside_a_compressed_batch_is_found(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p", message_timestamp_before_max_ms=HOUR_MS)
    # base timestamp and max timestamp look fine; the oldest record is in the middle.
    stamps = [NOW_MS, NOW_MS - 2 * HOUR_MS, NOW_MS]
    error = rejected(plog, encode_batch(records([b"k"] * 3, stamps), compression=Compression.GZIP))
    assert error.code == ErrorCode.INVALID_TIMESTAMP and "offset delta 1" in error.message


def test_only_the_configured_side_is_bounded(tmp_path: Path) -> None:
    old = open_log(tmp_path / "old", message_timestamp_before_max_ms=HOUR_MS)
    assert produce(old, encode_batch(records([None], [NOW_MS + 10 * 365 * 24 * HOUR_MS]))) == 0
    assert (
        rejected(old, encode_batch(records([None], [NOW_MS - HOUR_MS - 1]))).code
        == ErrorCode.INVALID_TIMESTAMP
    )
    new = open_log(tmp_path / "new", message_timestamp_after_max_ms=0)
    assert produce(new, encode_batch(records([None], [0]))) == 0
    assert rejected(new, encode_batch(records([None], [NOW_MS + 1]))).code == ErrorCode.INVALID_TIMESTAMP


def test_records_without_a_timestamp_are_not_bounded(tmp_path: Path) -> None:
    # Kafka skips NO_TIMESTAMP (-1) records in this check, and so do we.
    plog = open_log(tmp_path / "p", message_timestamp_before_max_ms=HOUR_MS)
    assert produce(plog, encode_batch(records([None], [-1]))) == 0


def test_log_append_time_topics_are_not_bounded(tmp_path: Path) -> None:
    plog = open_log(
        tmp_path / "p",
        message_timestamp_type="LogAppendTime",
        message_timestamp_before_max_ms=1,
        message_timestamp_after_max_ms=1,
    )
    assert produce(plog, encode_batch(records([None, None], [0, NOW_MS * 2]))) == 0
    assert [r.timestamp for r in read_all(plog)] == [NOW_MS, NOW_MS]


def test_default_configs_accept_any_timestamp(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p")
    stamps = [0, 1, NOW_MS - 50 * 365 * 24 * HOUR_MS, NOW_MS + 50 * 365 * 24 * HOUR_MS, 2**62]
    assert produce(plog, encode_batch(records([None] * len(stamps), stamps))) == 0
    assert [r.timestamp for r in read_all(plog)] == stamps


def test_a_client_batch_claiming_log_append_time_is_refused_on_a_bounded_topic(tmp_path: Path) -> None:
    from riel.records import set_log_append_time

    plog = open_log(tmp_path / "p", message_timestamp_before_max_ms=HOUR_MS)
    claimed = bytearray(encode_batch(records([None], [0])))
    set_log_append_time(claimed, 0, NOW_MS)  # would hide the record's real (too old) timestamp
    error = rejected(plog, bytes(claimed))
    assert error.code == ErrorCode.INVALID_TIMESTAMP and "LogAppendTime" in error.message


def test_both_policies_on_one_topic(tmp_path: Path) -> None:
    plog = open_log(tmp_path / "p", cleanup_policy="compact", message_timestamp_before_max_ms=HOUR_MS)
    assert rejected(plog, encode_batch(records([None]))).code == ErrorCode.INVALID_RECORD
    assert rejected(plog, encode_batch(records([b"k"], [0]))).code == ErrorCode.INVALID_TIMESTAMP
    assert produce(plog, encode_batch(records([b"k"]))) == 0


# ------------------------------------------------------------------------------------- embedded SDK


def test_the_embedded_sdk_reports_the_policy_to_the_publisher(tmp_path: Path) -> None:
    with riel.open(str(tmp_path / "data")) as log:
        log.create_topic("latest", config={"cleanup.policy": "compact"})
        with pytest.raises(PublishError) as keyless:
            log.publish("latest", b"no key").result(timeout=10)
        assert keyless.value.code == ErrorCode.INVALID_RECORD
        assert "compacted topic cannot accept a record without a key" in str(keyless.value)
        assert log.publish("latest", b"keyed", key="k").result(timeout=10).offset == 0

        log.create_topic("recent", config={"message.timestamp.before.max.ms": str(HOUR_MS)})
        with pytest.raises(PublishError) as too_old:
            log.publish("recent", b"old", timestamp=1_000).result(timeout=10)
        assert too_old.value.code == ErrorCode.INVALID_TIMESTAMP
        assert "message.timestamp.before.max.ms=3600000" in str(too_old.value)
        assert log.publish("recent", b"now").result(timeout=10).offset == 0
