"""The embedded SDK (riel.open) on a real data directory: publishing, groups, seeking, replay, lag,
durability across reopen, and the data-directory lock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pydantic
import pytest

import riel
from riel.client.embedded import EmbeddedLog
from riel.client.partitioner import partition_for_key
from riel.errors import (
    DataDirLockedError,
    GroupRequiredError,
    NotAssignedError,
    PublishError,
    TopicExistsError,
    UnknownTopicError,
)


@pytest.fixture
def log(tmp_path: Path) -> EmbeddedLog:
    opened = riel.open(tmp_path / "data")
    assert isinstance(opened, EmbeddedLog)
    yield opened
    opened.close()


def drain(consumer: riel.Consumer, idle: float = 0.3) -> list[riel.Message]:
    return list(consumer.messages(idle_timeout=idle))


def test_topics_create_list_describe_delete(log: EmbeddedLog) -> None:
    described = log.create_topic("orders", partitions=3, config={"retention.ms": "60000"})
    assert described == riel.TopicDescription("orders", 3, {"retention.ms": "60000"})
    log.create_topic("audit")
    assert log.list_topics() == ["audit", "orders"]
    assert log.describe_topic("orders").partitions == 3
    with pytest.raises(TopicExistsError):
        log.create_topic("orders")
    log.delete_topic("audit")
    assert log.list_topics() == ["orders"]
    with pytest.raises(UnknownTopicError):
        log.describe_topic("audit")
    with pytest.raises(UnknownTopicError):
        log.delete_topic("audit")


def test_publish_returns_future_with_increasing_offsets(log: EmbeddedLog) -> None:
    futures = [log.publish("t", f"m{i}".encode()) for i in range(10)]
    published = [f.result(5) for f in futures]
    assert [p.offset for p in published] == list(range(10))
    assert {p.topic for p in published} == {"t"} and {p.partition for p in published} == {0}
    assert all(f.done() for f in futures) and futures[0].exception(0) is None
    many = log.publish_many("t", [b"a", b"b", b"c"]).result(5)
    assert [p.offset for p in many] == [10, 11, 12]
    values = [m.value for m in drain(log.subscribe("t"))]
    assert values == [f"m{i}".encode() for i in range(10)] + [b"a", b"b", b"c"]


def test_done_callbacks_run_once_acknowledged(log: EmbeddedLog) -> None:
    seen: list[int] = []
    done = threading.Event()
    future = log.publish("t", b"x")
    future.add_done_callback(lambda f: (seen.append(f.result().offset), done.set()))
    assert done.wait(5)
    future.add_done_callback(lambda f: seen.append(-1))  # already done: runs at once
    assert seen == [0, -1]


def test_keyed_messages_follow_kafkas_murmur2_partitioning(log: EmbeddedLog) -> None:
    log.create_topic("keyed", partitions=5)
    for i in range(60):
        key = f"user-{i}"
        assert log.publish("keyed", b"v", key=key).result(5).partition == partition_for_key(key.encode(), 5)
    per_key: dict[bytes, set[int]] = {}
    for message in drain(log.subscribe("keyed")):
        per_key.setdefault(message.key, set()).add(message.partition)
    assert len(per_key) == 60 and all(len(parts) == 1 for parts in per_key.values())


def test_unkeyed_messages_are_spread_over_partitions(tmp_path: Path) -> None:
    with riel.open(tmp_path / "d", linger_ms=0, batch_bytes=200) as log:
        log.create_topic("spread", partitions=4)
        partitions = {log.publish("spread", b"x" * 50).result(5).partition for _ in range(200)}
    assert len(partitions) >= 3


def test_headers_and_explicit_partition_and_timestamp(log: EmbeddedLog) -> None:
    log.create_topic("h", partitions=2)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    log.publish("h", b"1", headers=[("a", b"x"), ("b", None)], partition=1, timestamp=when).result(5)
    log.publish("h", b"2", headers={"trace": "t-1"}, partition=1).result(5)
    first, second = drain(log.subscribe("h"))
    assert first.headers == (("a", b"x"), ("b", None)) and first.partition == 1
    assert first.time == when and first.timestamp == int(when.timestamp() * 1000)
    assert second.headers == (("trace", b"t-1"),)
    with pytest.raises(UnknownTopicError, match="no partition 2"):
        log.publish("h", b"x", partition=2)


class Order(pydantic.BaseModel):
    table: int
    dish: str


class Transfer(msgspec.Struct):
    source: str
    amount: int


def test_codecs_str_json_pydantic_msgspec(tmp_path: Path) -> None:
    with riel.open(tmp_path / "j", value_codec="json", key_codec="str") as log:
        log.publish("j", {"a": [1, 2]}, key="k").result(5)
        (message,) = drain(log.subscribe("j"))
        assert message.value == {"a": [1, 2]} and message.key == "k"
        raw = drain(log.subscribe("j", value_codec="bytes", key_codec="bytes"))
        assert raw[0].value == b'{"a":[1,2]}' and raw[0].key == b"k"
    with riel.open(tmp_path / "p", value_codec=Order) as log:
        log.publish("orders", Order(table=4, dish="soup")).result(5)
        with pytest.raises(TypeError, match="expected a Order"):
            log.publish("orders", {"table": 4})
        assert [m.value for m in drain(log.subscribe("orders"))] == [Order(table=4, dish="soup")]
        assert next(iter(log.replay("orders"))).value == Order(table=4, dish="soup")
    with riel.open(tmp_path / "m", value_codec=Transfer) as log:
        log.publish("bank", Transfer("alice", 10)).result(5)
        assert [m.value for m in drain(log.subscribe("bank"))] == [Transfer("alice", 10)]
    with riel.open(":memory:") as log, pytest.raises(TypeError, match="value_codec='json'"):
        log.publish("t", {"not": "bytes"})


def test_group_members_split_partitions_and_hand_over_cooperatively(log: EmbeddedLog) -> None:
    log.create_topic("tickets", partitions=4)
    first = log.subscribe("tickets", group="kitchen")
    assert first.assignment() == {("tickets", p) for p in range(4)}
    second = log.subscribe("tickets", group="kitchen")
    # The newcomer only gets partitions once the first member has given them up (on its next poll).
    assert second.assignment() == set()
    first.poll(0)
    assert second.assignment() == {("tickets", 2), ("tickets", 3)}
    assert first.assignment() == {("tickets", 0), ("tickets", 1)}
    log.publish_many("tickets", [b"a"] * 10, partition=0).result(5)
    log.publish_many("tickets", [b"b"] * 10, partition=3).result(5)
    got_first, got_second = drain(first), drain(second)
    assert {m.partition for m in got_first} == {0} and len(got_first) == 10
    assert {m.partition for m in got_second} == {3} and len(got_second) == 10
    second.close()  # leaves the group (committing): its partitions go back to the first member
    assert first.assignment() == {("tickets", p) for p in range(4)}
    log.publish("tickets", b"late", partition=3).result(5)
    assert [m.value for m in drain(first)] == [b"late"]


def test_group_delivers_each_message_once_across_a_rebalance(log: EmbeddedLog) -> None:
    log.create_topic("work", partitions=3)
    log.publish_many("work", [str(i).encode() for i in range(300)]).result(5)
    members = [log.subscribe("work", group="g")]
    seen: list[bytes] = [m.value for m in members[0].messages(idle_timeout=0.2, max_messages=50)]
    members[0].commit()
    members.append(log.subscribe("work", group="g"))
    for _ in range(20):
        for member in members:
            seen += [m.value for m in member.messages(idle_timeout=0.05)]
    assert sorted(seen, key=int) == [str(i).encode() for i in range(300)]


def test_committed_offsets_survive_reopen(tmp_path: Path) -> None:
    with riel.open(tmp_path / "d") as log:
        log.publish_many("t", [b"1", b"2", b"3", b"4"]).result(5)
        consumer = log.subscribe("t", group="g", auto_commit=False)
        _, second, _ = consumer.messages(max_messages=3)
        consumer.commit(second)
        assert consumer.committed() == {("t", 0): 2}
        with pytest.raises(GroupRequiredError):
            log.subscribe("t").commit()
    with riel.open(tmp_path / "d") as log:
        assert [m.value for m in drain(log.subscribe("t", group="g"))] == [b"3", b"4"]
        assert log.lag("g") == {("t", 0): 2}


def test_auto_commit_on_close_and_lag(log: EmbeddedLog) -> None:
    log.create_topic("t", partitions=2)
    log.publish_many("t", [b"x"] * 6, partition=0).result(5)
    log.publish_many("t", [b"y"] * 4, partition=1).result(5)
    consumer = log.subscribe("t", group="audit")
    assert len(list(consumer.messages(max_messages=7, idle_timeout=1))) == 7
    consumer.close()
    lag = log.lag("audit")
    assert sum(lag.values()) == 3 and set(lag) == {("t", 0), ("t", 1)}
    rest = drain(log.subscribe("t", group="audit"))
    assert len(rest) == 3


def test_start_latest_skips_existing_messages(log: EmbeddedLog) -> None:
    log.publish("t", b"old").result(5)
    consumer = log.subscribe("t", group="late", start="latest")
    assert consumer.poll(0.2) is None
    log.publish("t", b"new").result(5)
    message = consumer.poll(5)
    assert message is not None and message.value == b"new"


def test_seek_seek_to_time_beginning_end(log: EmbeddedLog) -> None:
    log.publish_many("t", [b"a", b"b", b"c"]).result(5)
    time.sleep(0.05)
    middle = datetime.now(tz=UTC)
    time.sleep(0.05)
    log.publish_many("t", [b"d", b"e"]).result(5)
    consumer = log.subscribe("t")
    assert len(drain(consumer)) == 5
    consumer.seek("t", 0, 1)
    assert consumer.position("t", 0) == 1
    assert [m.value for m in drain(consumer)] == [b"b", b"c", b"d", b"e"]
    consumer.seek_to_time(middle)
    assert [m.value for m in drain(consumer)] == [b"d", b"e"]
    consumer.seek_to_beginning()
    assert consumer.poll(1).value == b"a"  # type: ignore[union-attr]
    consumer.seek_to_end()
    assert consumer.poll(0.1) is None and consumer.position("t", 0) == 5
    with pytest.raises(NotAssignedError, match="not assigned"):
        consumer.seek("t", 7, 0)


def test_pause_and_resume(log: EmbeddedLog) -> None:
    log.create_topic("t", partitions=2)
    log.publish_many("t", [b"p0"] * 3, partition=0).result(5)
    log.publish_many("t", [b"p1"] * 3, partition=1).result(5)
    consumer = log.subscribe("t")
    consumer.pause([("t", 0)])
    assert consumer.paused() == {("t", 0)}
    assert {m.value for m in drain(consumer)} == {b"p1"}
    consumer.resume()
    assert [m.value for m in drain(consumer)] == [b"p0"] * 3


def test_replay_by_offsets_and_by_time(log: EmbeddedLog) -> None:
    log.create_topic("box", partitions=2)
    for i in range(6):
        log.publish("box", f"early-{i}".encode(), partition=i % 2).result(5)
    time.sleep(0.05)
    since = datetime.now(tz=UTC)
    time.sleep(0.05)
    for i in range(4):
        log.publish("box", f"late-{i}".encode(), partition=i % 2).result(5)
        time.sleep(0.002)
    time.sleep(0.05)
    until = datetime.now(tz=UTC)
    log.publish("box", b"after", partition=0).result(5)
    replayed = list(log.replay("box", since=since, until=until))
    assert [m.value for m in replayed] == [f"late-{i}".encode() for i in range(4)]
    assert [m.timestamp for m in replayed] == sorted(m.timestamp for m in replayed)
    everything = list(log.replay("box"))
    assert len(everything) == 11
    by_offset = list(log.replay("box", since=1, until=3))
    assert sorted((m.partition, m.offset) for m in by_offset) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    with pytest.raises(UnknownTopicError):
        list(log.replay("missing"))


def test_replay_ends_at_the_end_as_of_the_call(log: EmbeddedLog) -> None:
    log.publish_many("t", [b"1", b"2"]).result(5)
    iterator = log.replay("t")
    log.publish("t", b"3").result(5)
    assert [m.value for m in iterator] == [b"1", b"2"]


def test_too_large_message_fails_at_once_and_others_still_land(log: EmbeddedLog) -> None:
    log.create_topic("small", config={"max.message.bytes": "2000"})
    ok = log.publish("small", b"x" * 100)
    with pytest.raises(PublishError, match=r"max\.message\.bytes"):
        log.publish("small", b"x" * 5000)
    assert ok.result(5).offset == 0


def test_a_consumer_waiting_for_messages_wakes_on_publish(log: EmbeddedLog) -> None:
    consumer = log.subscribe("t")
    got: list[riel.Message | None] = []
    waiter = threading.Thread(target=lambda: got.append(consumer.poll(10)))
    waiter.start()
    time.sleep(0.1)
    started = time.monotonic()
    log.publish("t", b"wake").result(5)
    waiter.join(10)
    assert got and got[0] is not None and got[0].value == b"wake"
    assert time.monotonic() - started < 5


def test_silent_member_is_removed_after_max_poll_interval(tmp_path: Path) -> None:
    with riel.open(tmp_path / "d", max_poll_interval_ms=200) as log:
        log.create_topic("t", partitions=2)
        silent = log.subscribe("t", group="g")
        active = log.subscribe("t", group="g")
        silent.poll(0)
        assert active.assignment() == {("t", 1)}
        time.sleep(0.3)
        assert active.assignment() == {("t", 0), ("t", 1)}


def test_memory_log_leaves_nothing_behind() -> None:
    log = riel.open(":memory:")
    assert isinstance(log, EmbeddedLog)
    path = log.path
    log.publish("t", b"x").result(5)
    assert path.exists()
    log.close()
    assert not path.exists()


def test_closed_log_refuses_work(tmp_path: Path) -> None:
    log = riel.open(tmp_path / "d")
    log.close()
    log.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        log.publish("t", b"x")


def test_data_dir_lock_names_the_owner(tmp_path: Path) -> None:
    with (
        riel.open(tmp_path / "d"),
        pytest.raises(DataDirLockedError, match=r"in use by process \d+.*riel\.connect"),
    ):
        riel.open(tmp_path / "d")


def test_async_forms(tmp_path: Path) -> None:
    import asyncio

    async def main() -> list[bytes]:
        async with riel.open_async(str(tmp_path / "a")) as log:
            published = await log.publish("t", b"one")
            assert published.offset == 0
            many = await log.publish_many("t", [b"two", b"three"])
            assert [p.offset for p in many] == [1, 2]
            await log.flush()
            assert await log.list_topics() == ["t"]
            consumer = log.subscribe("t", group="g")
            values = [m.value async for m in consumer.messages(idle_timeout=0.3)]
            await consumer.commit()
            assert await log.lag("g") == {("t", 0): 0}
            values += [m.value async for m in log.replay("t", since=2)]
            await consumer.close()
            return values

    assert asyncio.run(main()) == [b"one", b"two", b"three", b"three"]


def test_append_only_topics_refuse_deletion_embedded(log: EmbeddedLog) -> None:
    from riel.errors import ErrorCode, KafkaApiError

    log.create_topic("ledger", config={"riel.append.only": "true"})
    log.publish("ledger", b"entry").result(5)
    with pytest.raises(KafkaApiError) as refused:
        log.delete_topic("ledger")
    assert refused.value.code == ErrorCode.TOPIC_DELETION_DISABLED
    assert [m.value for m in log.replay("ledger")] == [b"entry"]
