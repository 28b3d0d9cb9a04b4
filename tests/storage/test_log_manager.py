"""LogManager: the topic catalogue, its persistence, the data-dir lock and the clean-shutdown marker."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from riel.config import TOPIC_CONFIG_DEFAULTS, FlushPolicy
from riel.errors import DataDirLockedError, ErrorCode, KafkaApiError, StorageError
from riel.storage import LogManager

from .helpers import NOW_MS, batch, read_all, values


def manager(data_dir: Path, flush: str = "os", **defaults: str) -> LogManager:
    return LogManager(data_dir, FlushPolicy.parse(flush), {**TOPIC_CONFIG_DEFAULTS, **defaults})


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def lm(data_dir: Path) -> Iterator[LogManager]:
    m = manager(data_dir)
    m.open()
    yield m
    m.close()


def api_error(code: ErrorCode, call: object, *args: object) -> None:
    with pytest.raises(KafkaApiError) as info:
        call(*args)  # type: ignore[operator]
    assert info.value.code == code, info.value


def test_create_topic_and_its_partitions(lm: LogManager, data_dir: Path) -> None:
    info = lm.create_topic("orders", 3, {"retention.ms": "1000"})
    assert (info.name, info.partitions, info.configs) == ("orders", 3, {"retention.ms": "1000"})
    assert info.topic_id.int != 0
    assert lm.topics() == {"orders": info}
    assert lm.topic_by_id(info.topic_id) == info
    assert lm.topic_by_id(uuid.uuid4()) is None
    assert [lm.partition("orders", i) is not None for i in range(4)] == [True, True, True, False]
    assert lm.partition("nope", 0) is None
    assert sorted(p.name for p in (data_dir / "topics").iterdir()) == ["orders-0", "orders-1", "orders-2"]


@pytest.mark.parametrize("name", ["", ".", "..", "a" * 250, "a/b", "a b", "caf\u00e9", "x:y"])
def test_invalid_topic_names(lm: LogManager, name: str) -> None:
    api_error(ErrorCode.INVALID_TOPIC_EXCEPTION, lm.create_topic, name, 1, {})


def test_longest_legal_name(lm: LogManager) -> None:
    name = "a-._" + "z" * 245
    assert len(name) == 249
    lm.create_topic(name, 1, {})
    lm.delete_topic(name)


def test_duplicates_collisions_partitions_and_configs_are_rejected(lm: LogManager) -> None:
    lm.create_topic("a.b", 1, {})
    api_error(ErrorCode.TOPIC_ALREADY_EXISTS, lm.create_topic, "a.b", 1, {})
    api_error(ErrorCode.INVALID_TOPIC_EXCEPTION, lm.create_topic, "a_b", 1, {})
    api_error(ErrorCode.INVALID_PARTITIONS, lm.create_topic, "t", 0, {})
    api_error(ErrorCode.INVALID_CONFIG, lm.create_topic, "t", 1, {"no.such.config": "1"})
    api_error(ErrorCode.INVALID_CONFIG, lm.create_topic, "t", 1, {"segment.bytes": "ten"})
    api_error(ErrorCode.INVALID_CONFIG, lm.create_topic, "t", 1, {"segment.bytes": "3"})
    api_error(ErrorCode.INVALID_CONFIG, lm.create_topic, "t", 1, {"message.timestamp.type": "Whenever"})
    api_error(ErrorCode.INVALID_CONFIG, lm.create_topic, "t", 1, {"min.cleanable.dirty.ratio": "1.5"})
    api_error(ErrorCode.INVALID_CONFIG, lm.create_topic, "t", 1, {"min.cleanable.dirty.ratio": "half"})
    api_error(ErrorCode.INVALID_CONFIG, lm.create_topic, "t", 1, {"delete.retention.ms": "-1"})
    assert list(lm.topics()) == ["a.b"]


def test_effective_config_overlays_defaults(data_dir: Path) -> None:
    with manager(data_dir, **{"segment.ms": "1234"}) as lm:
        lm.create_topic("t", 1, {"max.message.bytes": "500"})
        effective = lm.effective_config("t")
        assert effective["segment.ms"] == "1234"
        assert effective["max.message.bytes"] == "500"
        assert effective["cleanup.policy"] == "delete"
        api_error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, lm.effective_config, "missing")


def test_alter_configs_replaces_the_set_and_applies_at_once(lm: LogManager) -> None:
    lm.create_topic("t", 1, {"max.message.bytes": "100000", "retention.ms": "5"})
    plog = lm.partition("t", 0)
    assert plog is not None
    plog.append(batch(1, value=b"x" * 500), NOW_MS)
    info = lm.alter_topic_configs("t", {"max.message.bytes": "200"})
    assert info.configs == {"max.message.bytes": "200"}
    with pytest.raises(KafkaApiError) as error:
        plog.append(batch(1, value=b"x" * 500), NOW_MS)
    assert error.value.code == ErrorCode.MESSAGE_TOO_LARGE
    api_error(ErrorCode.INVALID_CONFIG, lm.alter_topic_configs, "t", {"bogus": "1"})
    api_error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, lm.alter_topic_configs, "nope", {})


def test_create_partitions(lm: LogManager) -> None:
    lm.create_topic("t", 2, {})
    api_error(ErrorCode.INVALID_PARTITIONS, lm.create_partitions, "t", 2)
    api_error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, lm.create_partitions, "nope", 5)
    info = lm.create_partitions("t", 4)
    assert info.partitions == 4 and lm.topics()["t"].partitions == 4
    assert lm.partition("t", 3) is not None


def test_delete_topic_removes_its_data_and_a_recreated_topic_starts_empty(
    lm: LogManager, data_dir: Path
) -> None:
    first = lm.create_topic("t", 2, {})
    plog = lm.partition("t", 0)
    assert plog is not None
    plog.append(batch(3), NOW_MS)
    chunk = plog.read(0, 1000)
    lm.delete_topic("t")
    assert lm.topics() == {} and lm.partition("t", 0) is None and lm.topic_by_id(first.topic_id) is None
    assert list((data_dir / "topics").iterdir()) == []
    assert chunk is not None and len(chunk.read_bytes()) == chunk.size  # an in-flight read still completes
    chunk.close()
    api_error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, lm.delete_topic, "t")
    second = lm.create_topic("t", 1, {})
    assert second.topic_id != first.topic_id
    fresh = lm.partition("t", 0)
    assert fresh is not None and fresh.high_watermark == 0


def test_everything_survives_a_reopen(data_dir: Path) -> None:
    with manager(data_dir) as lm:
        a = lm.create_topic("a", 2, {"segment.bytes": "100000"})
        b = lm.create_topic("b", 1, {})
        lm.create_partitions("b", 3)
        lm.alter_topic_configs("b", {"message.timestamp.type": "LogAppendTime"})
        pa = lm.partition("a", 1)
        assert pa is not None
        for i in range(5):
            pa.append(batch(1, value=b"v%d-" % i, producer_id=9, epoch=0, sequence=i), NOW_MS)
        pa.delete_records(2)
    for clean in (True, False):
        lm = manager(data_dir)
        lm.open()
        topics = lm.topics()
        assert topics["a"] == a
        assert (topics["b"].topic_id, topics["b"].partitions, topics["b"].configs) == (
            b.topic_id, 3, {"message.timestamp.type": "LogAppendTime"},
        )  # fmt: skip
        pa = lm.partition("a", 1)
        assert pa is not None and (pa.log_start_offset, pa.high_watermark) == (2, 5)
        assert values(read_all(pa)) == [b"v2-0", b"v3-0", b"v4-0"]
        duplicate = pa.append(batch(1, value=b"v4-", producer_id=9, epoch=0, sequence=4), NOW_MS)
        assert duplicate.base_offset == 4 and pa.high_watermark == 5
        pb = lm.partition("b", 2)
        assert pb is not None and pb.append(batch(1), NOW_MS).log_append_time_ms == NOW_MS
        pb.delete_records(pb.high_watermark)
        lm.close(clean=clean)


def test_clean_shutdown_marker(data_dir: Path) -> None:
    lm = manager(data_dir)
    lm.open()
    assert lm.recovered_unclean  # a brand-new directory has no marker
    assert not (data_dir / ".clean-shutdown").exists()
    lm.close()
    assert (data_dir / ".clean-shutdown").exists()
    lm.open()
    assert not lm.recovered_unclean and not (data_dir / ".clean-shutdown").exists()
    lm.close(clean=False)
    assert not (data_dir / ".clean-shutdown").exists()
    lm.open()
    assert lm.recovered_unclean
    lm.close()


def test_torn_tail_after_a_kill_is_recovered_through_the_manager(data_dir: Path) -> None:
    lm = manager(data_dir, flush="always")
    lm.open()
    lm.create_topic("t", 1, {})
    plog = lm.partition("t", 0)
    assert plog is not None
    for i in range(3):
        plog.append(batch(1, value=b"m%d-" % i), NOW_MS)
    lm.close(clean=False)
    segment = data_dir / "topics" / "t-0" / "00000000000000000000.log"
    os.truncate(segment, segment.stat().st_size - 7)
    lm.open()
    plog = lm.partition("t", 0)
    assert plog is not None and plog.high_watermark == 2
    assert plog.append(batch(1, value=b"new"), NOW_MS).base_offset == 2
    assert values(read_all(plog)) == [b"m0-0", b"m1-0", b"new0"]
    lm.close()


def test_data_dir_lock_names_the_owner(data_dir: Path) -> None:
    first = manager(data_dir)
    first.open()
    second = manager(data_dir)
    with pytest.raises(DataDirLockedError) as info:
        second.open()
    assert str(os.getpid()) in str(info.value)
    assert (data_dir / ".lock").read_text().strip() == str(os.getpid())
    first.close()
    second.open()  # released on close
    second.close()


def test_orphan_and_half_deleted_directories_are_removed_at_open(data_dir: Path) -> None:
    with manager(data_dir) as lm:
        lm.create_topic("keep", 1, {})
    topics = data_dir / "topics"
    (topics / "ghost-0").mkdir()
    (topics / "ghost-0" / "00000000000000000000.log").write_bytes(b"old data")
    (topics / "gone-0.1234abcd-delete").mkdir()
    (topics / "keep-1").mkdir()  # a partition the catalogue does not have
    with manager(data_dir) as lm:
        assert sorted(p.name for p in topics.iterdir()) == ["keep-0"]
        lm.create_topic("ghost", 1, {})
        ghost = lm.partition("ghost", 0)
        assert ghost is not None and ghost.high_watermark == 0


def test_missing_catalogue_with_partition_directories_refuses_to_guess(data_dir: Path) -> None:
    with manager(data_dir) as lm:
        lm.create_topic("t", 1, {})
    (data_dir / "metadata.json").unlink()
    lm = manager(data_dir)
    with pytest.raises(StorageError):
        lm.open()
    assert (data_dir / "topics" / "t-0").exists()
    lm = manager(data_dir)  # the failed open released the lock
    (data_dir / "topics" / "t-0").rename(data_dir / "elsewhere")
    lm.open()
    lm.close()


def test_catalogue_is_written_atomically_as_json(lm: LogManager, data_dir: Path) -> None:
    info = lm.create_topic("t", 2, {"retention.ms": "7"})
    document = json.loads((data_dir / "metadata.json").read_text())
    assert document["topics"] == [
        {"name": "t", "topic_id": str(info.topic_id), "partitions": 2, "configs": {"retention.ms": "7"}}
    ]
    assert not list(data_dir.glob("*.tmp"))


def test_damaged_catalogue_is_a_storage_error(data_dir: Path) -> None:
    with manager(data_dir):
        pass
    (data_dir / "metadata.json").write_text("{")
    with pytest.raises(StorageError):
        manager(data_dir).open()


def test_tick_flushes_interval_partitions_and_checkpoints(data_dir: Path) -> None:
    lm = manager(data_dir, flush="interval:1000000:100")
    lm.open(now_ms=0)
    lm.create_topic("t", 1, {})
    plog = lm.partition("t", 0)
    assert plog is not None
    plog.append(batch(2), 10)
    assert plog.recovery_point == 0
    lm.tick(50)
    assert plog.recovery_point == 0
    lm.tick(110)
    assert plog.recovery_point == 2
    lm.tick(60_000)
    checkpoint = json.loads((data_dir / "topics" / "t-0" / "checkpoint.json").read_text())
    assert checkpoint["recovery_point"] == 2
    lm.close()


def test_use_before_open_is_an_error(data_dir: Path) -> None:
    with pytest.raises(StorageError):
        manager(data_dir).create_topic("t", 1, {})


def test_no_clean_shutdown_marker_after_a_disk_error(tmp_path: Path) -> None:
    from riel.storage.log_manager import CLEAN_SHUTDOWN_FILE

    manager = LogManager(tmp_path, FlushPolicy.parse("os"), dict(TOPIC_CONFIG_DEFAULTS))
    manager.open()
    manager.create_topic("t", 1, {})
    plog = manager.partition("t", 0)
    assert plog is not None
    plog._failure = "simulated fsync failure"
    with pytest.raises(StorageError, match="offline"):
        manager.close()
    assert not (tmp_path / CLEAN_SHUTDOWN_FILE).exists()
