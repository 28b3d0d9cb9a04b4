"""Delete retention (retention.ms / retention.bytes) and append-only topics in the storage layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from riel.config import FlushPolicy
from riel.errors import ErrorCode, KafkaApiError
from riel.storage.log_manager import LogManager

from .helpers import NOW_MS, batch, open_log, read_all


def filled(tmp_path: Path, timestamps: list[int], **configs: str | int):  # type: ignore[no-untyped-def]
    """A log with one 1-record segment per timestamp (segment.bytes fits one batch); distinct keys, as
    compacted topics need them."""
    one = len(batch(1, key=b"k0"))
    plog = open_log(tmp_path / "p", segment_bytes=one, **configs)
    for i, ts in enumerate(timestamps):
        plog.append(batch(1, timestamp=ts, key=b"k%d" % (i % 10)), NOW_MS)
    return plog


def test_retention_ms_deletes_whole_expired_segments_and_moves_the_log_start(tmp_path: Path) -> None:
    plog = filled(tmp_path, [1_000, 2_000, 3_000, 9_000, 9_500], retention_ms=5_000)
    assert plog.segment_base_offsets() == [0, 1, 2, 3, 4]
    assert plog.apply_retention(now_ms=10_000) == 3  # newest records 1000..3000 are older than 5000
    assert plog.segment_base_offsets() == [3, 4] and plog.log_start_offset == 3
    assert [r.offset for r in read_all(plog)] == [3, 4]
    assert sorted(p.name for p in (tmp_path / "p").glob("*.log")) == [
        "00000000000000000003.log", "00000000000000000004.log",
    ]  # fmt: skip
    with pytest.raises(KafkaApiError) as below:
        plog.read(1, 1 << 20)
    assert below.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert plog.apply_retention(now_ms=10_000) == 0  # nothing more has expired


def test_an_idle_fully_expired_log_is_emptied_but_keeps_its_offsets(tmp_path: Path) -> None:
    plog = filled(tmp_path, [1_000, 2_000], retention_ms=100)
    assert plog.apply_retention(now_ms=50_000) == 2
    assert plog.log_start_offset == plog.log_end_offset == 2
    assert read_all(plog) == []
    plog.append(batch(1, timestamp=50_000), NOW_MS)
    assert [r.offset for r in read_all(plog)] == [2]  # offsets never go back


def test_retention_bytes_keeps_the_newest_segments_within_the_limit(tmp_path: Path) -> None:
    one = len(batch(1))
    plog = filled(tmp_path, [NOW_MS] * 6, retention_bytes=one * 3, retention_ms=-1)
    # 6 one-batch segments of which the last is active (empty segments hold nothing): keep 3 batches.
    assert plog.apply_retention(now_ms=NOW_MS) == 3
    assert [r.offset for r in read_all(plog)] == [3, 4, 5]
    assert plog.log_start_offset == 3


@pytest.mark.parametrize("configs", [{"riel_append_only": "true"}, {"cleanup_policy": "compact"}])
def test_no_retention_on_append_only_or_compact_only_topics(tmp_path: Path, configs: dict[str, str]) -> None:
    plog = filled(tmp_path, [1_000, 2_000, 3_000], retention_ms=1, retention_bytes=0, **configs)
    assert plog.apply_retention(now_ms=10**12) == 0
    assert [r.offset for r in read_all(plog)] == [0, 1, 2]


def test_delete_records_refused_on_an_append_only_topic(tmp_path: Path) -> None:
    plog = filled(tmp_path, [1_000, 2_000], riel_append_only="true")
    with pytest.raises(KafkaApiError) as refused:
        plog.delete_records(1)
    assert refused.value.code == ErrorCode.POLICY_VIOLATION and "append-only" in refused.value.message
    assert plog.log_start_offset == 0


def manager(tmp_path: Path, **kwargs: int) -> LogManager:
    logs = LogManager(tmp_path / "data", FlushPolicy.parse("os"), {}, **kwargs)
    logs.open(now_ms=NOW_MS)
    return logs


def test_append_only_topics_cannot_be_deleted_or_weakened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    logs = manager(tmp_path)
    logs.create_topic("audit", 1, {"riel.append.only": "true"})
    with pytest.raises(KafkaApiError) as deleting:
        logs.delete_topic("audit")
    assert deleting.value.code == ErrorCode.TOPIC_DELETION_DISABLED
    for weaker in (
        {},
        {"riel.append.only": "false"},
        {"riel.append.only": "true", "cleanup.policy": "compact"},
    ):
        with pytest.raises(KafkaApiError) as altering:
            logs.alter_topic_configs("audit", weaker)
        assert altering.value.code == ErrorCode.POLICY_VIOLATION
    logs.alter_topic_configs("audit", {"riel.append.only": "true", "retention.ms": "1000"})  # harmless
    with pytest.raises(KafkaApiError) as creating:
        logs.create_topic("bad", 1, {"riel.append.only": "true", "cleanup.policy": "compact,delete"})
    assert creating.value.code == ErrorCode.POLICY_VIOLATION
    assert "audit" in logs.topics() and "bad" not in logs.topics()
    assert "refused to delete append-only topic 'audit'" in caplog.text
    logs.close()


def test_tick_applies_retention_every_check_interval(tmp_path: Path) -> None:
    logs = manager(tmp_path, retention_check_interval_ms=1_000)
    one = len(batch(1))
    logs.create_topic("t", 1, {"retention.ms": "100", "segment.bytes": str(one)})
    plog = logs.partition("t", 0)
    assert plog is not None
    for ts in (NOW_MS, NOW_MS + 1):
        plog.append(batch(1, timestamp=ts), NOW_MS)
    logs.tick(NOW_MS + 500)  # the first tick checks: both expired segments go
    assert plog.log_start_offset == 2
    for ts in (NOW_MS + 2, NOW_MS + 3):
        plog.append(batch(1, timestamp=ts), NOW_MS)
    logs.tick(NOW_MS + 1_000)  # expired, but the next check is only due at NOW_MS + 1500
    assert plog.log_start_offset == 2
    logs.tick(NOW_MS + 1_500)
    assert plog.log_start_offset == 4
    logs.close()
