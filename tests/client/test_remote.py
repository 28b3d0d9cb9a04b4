"""The remote SDK backend (``riel.client.remote``) against a real ``riel serve`` over TCP.

Every test uses its own topics and groups on the module's shared broker, and every wait is bounded:
consumers are read with idle timeouts and deadlines, futures with result timeouts.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from conftest import RielServer
from riel.client import remote
from riel.client.api import Consumer, Message, Published, TopicDescription
from riel.client.partitioner import partition_for_key
from riel.client.remote import RemoteConsumer, RemoteLog, _settings_by_client, connect
from riel.errors import (
    ErrorCode,
    KafkaApiError,
    NotAssignedError,
    PublishError,
    TopicExistsError,
    UnknownTopicError,
)

pytestmark = pytest.mark.timeout(60)

RESULT_TIMEOUT = 20.0
IDLE = 1.0  # seconds without a message after which a read is considered complete


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def log(riel: RielServer) -> Iterator[RemoteLog]:
    # Fast heartbeats: a member learns of a rebalance within ~100 ms instead of librdkafka's 3 s.
    remote_log = connect(riel.bootstrap, heartbeat_interval_ms=100, session_timeout_ms=6000)
    try:
        yield remote_log
    finally:
        remote_log.close()


def read_all(consumer: Consumer, expected: int, timeout: float = RESULT_TIMEOUT) -> list[Message]:
    """Exactly ``expected`` messages (more arriving within IDLE seconds is a failure)."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < expected:
        assert time.monotonic() < deadline, f"only {len(got)}/{expected} messages within {timeout}s"
        message = consumer.poll(0.5)
        if message is not None:
            got.append(message)
    extra = consumer.poll(IDLE)
    assert extra is None, f"unexpected message after the {expected} expected ones: {extra}"
    return got


def publish_ts(
    log: RemoteLog, topic: str, values: list[bytes], partition: int, timestamps: list[int]
) -> None:
    futures = [
        log.publish(topic, v, partition=partition, timestamp=ts)
        for v, ts in zip(values, timestamps, strict=True)
    ]
    for f in futures:
        f.result(RESULT_TIMEOUT)


# ----------------------------------------------------------------------------------------------- topics


def test_create_list_describe_delete_topics(log: RemoteLog) -> None:
    name = unique("topics")
    created = log.create_topic(name, 2, {"retention.ms": "3600000"})
    assert created == TopicDescription(name, 2, {"retention.ms": "3600000"})
    assert name in log.list_topics()
    assert log.list_topics() == sorted(log.list_topics())
    # Only the explicitly set config: none of the broker's defaults.
    assert log.describe_topic(name) == TopicDescription(name, 2, {"retention.ms": "3600000"})

    with pytest.raises(TopicExistsError, match=name):
        log.create_topic(name, 1)

    log.delete_topic(name)
    assert name not in log.list_topics()
    with pytest.raises(UnknownTopicError) as unknown:
        log.delete_topic(name)
    assert unknown.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION

    missing = unique("missing")
    with pytest.raises(UnknownTopicError):
        log.describe_topic(missing)
    # Describing must not auto-create the topic (the broker auto-creates on metadata requests naming it).
    assert missing not in log.list_topics()


def test_list_topics_hides_internal_topics(log: RemoteLog) -> None:
    # Kafka's internal topics (__consumer_offsets, __transaction_state) start with "__"; riel has none,
    # so make one.
    internal, visible = f"__{unique('internal')}", unique("visible")
    log.create_topic(internal, 1)
    log.create_topic(visible, 1)
    try:
        names = log.list_topics()
        assert visible in names
        assert internal not in names
        assert log.describe_topic(internal).partitions == 1  # hidden from the list, not unknown
    finally:
        log.delete_topic(internal)


# --------------------------------------------------------------------------------------------- publish


def test_publish_returns_future_of_published_with_increasing_offsets(log: RemoteLog) -> None:
    topic = unique("publish")
    log.create_topic(topic, 1)
    before = int(time.time() * 1000)
    futures = [log.publish(topic, f"value-{i}") for i in range(5)]
    results = [f.result(RESULT_TIMEOUT) for f in futures]
    after = int(time.time() * 1000)
    assert [(r.topic, r.partition, r.offset) for r in results] == [(topic, 0, i) for i in range(5)]
    assert all(before <= r.timestamp <= after for r in results), results

    when = datetime(2024, 5, 17, 12, 0, tzinfo=UTC)
    stamped = log.publish(topic, b"stamped", timestamp=when).result(RESULT_TIMEOUT)
    assert stamped == Published(topic, 0, 5, int(when.timestamp() * 1000))
    assert log.publish(topic, b"ms", timestamp=1234567).result(RESULT_TIMEOUT).timestamp == 1234567


def test_publish_many_resolves_one_future_in_input_order(log: RemoteLog) -> None:
    topic = unique("many")
    log.create_topic(topic, 1)
    values = [f"m{i}".encode() for i in range(200)]
    future = log.publish_many(topic, values)
    results = future.result(RESULT_TIMEOUT)
    assert [r.offset for r in results] == list(range(200))
    assert log.publish_many(topic, []).result(1) == []

    with log.subscribe(topic) as consumer:
        got = read_all(consumer, 200)
    assert [m.value for m in got] == values
    assert [m.offset for m in got] == [r.offset for r in results]


def test_keyed_messages_land_where_kafka_clients_put_them(log: RemoteLog) -> None:
    topic = unique("keys")
    log.create_topic(topic, 3)
    keys = [f"customer-{i}" for i in range(50)]
    futures = {key: log.publish(topic, b"v", key=key) for key in keys}
    placed = {key: f.result(RESULT_TIMEOUT).partition for key, f in futures.items()}
    assert placed == {key: partition_for_key(key.encode(), 3) for key in keys}
    # Same key again: same partition (sticky unkeyed partitioning must not leak into keyed messages).
    assert (
        log.publish_many(topic, [b"a", b"b"], key=keys[0]).result(RESULT_TIMEOUT)[1].partition
        == placed[keys[0]]
    )


def test_publish_to_missing_partition_fails_the_future(log: RemoteLog) -> None:
    topic = unique("nopart")
    log.create_topic(topic, 1)
    log.publish(topic, b"warm-up metadata").result(RESULT_TIMEOUT)
    future = log.publish(topic, b"x", partition=7)
    with pytest.raises(PublishError) as failed:
        future.result(RESULT_TIMEOUT)
    assert failed.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert topic in str(failed.value)


def test_full_local_queue_is_waited_out_not_dropped(riel: RielServer) -> None:
    topic = unique("backpressure")
    # A 10-message local queue: publishing 300 at once must hit BufferError and wait it out.
    log = RemoteLog(riel.bootstrap, queue_buffering_max_messages=10)
    try:
        log.create_topic(topic, 1)
        results = log.publish_many(topic, [f"m{i}".encode() for i in range(300)]).result(RESULT_TIMEOUT)
        assert [r.offset for r in results] == list(range(300))
        singles = [log.publish(topic, b"one") for _ in range(50)]
        assert [f.result(RESULT_TIMEOUT).offset for f in singles] == list(range(300, 350))
    finally:
        log.close()


def test_flush_timeout_and_failed_delivery_when_no_broker_answers() -> None:
    from conftest import free_port

    quiet = logging.getLogger(unique("quiet"))
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    log = RemoteLog(f"127.0.0.1:{free_port()}", message_timeout_ms=1500, config={"logger": quiet})
    try:
        future = log.publish("nowhere", b"x")
        with pytest.raises(TimeoutError, match="1 messages"):
            log.flush(0.3)
        with pytest.raises(PublishError) as failed:
            future.result(RESULT_TIMEOUT)
        assert failed.value.code == ErrorCode.REQUEST_TIMED_OUT
        log.flush(5)  # a failed message counts as done: nothing left to wait for
    finally:
        log.close()


def test_headers_round_trip_as_list_and_dict(log: RemoteLog) -> None:
    topic = unique("headers")
    log.create_topic(topic, 1)
    log.publish(topic, b"list", headers=[("a", b"1"), ("b", None), ("a", b"2")]).result(RESULT_TIMEOUT)
    log.publish(topic, b"dict", headers={"trace": "abc", "raw": b"\x00\xff", "none": None}).result(
        RESULT_TIMEOUT
    )
    log.publish(topic, b"none").result(RESULT_TIMEOUT)
    with log.subscribe(topic) as consumer:
        got = read_all(consumer, 3)
    assert got[0].headers == (("a", b"1"), ("b", None), ("a", b"2"))
    assert got[1].headers == (("trace", b"abc"), ("raw", b"\x00\xff"), ("none", None))
    assert got[2].headers == ()


class Order(BaseModel):
    id: int
    item: str
    amount: float


def test_json_and_pydantic_codecs_round_trip(riel: RielServer) -> None:
    topic = unique("codecs")
    with RemoteLog(riel.bootstrap, value_codec="json", key_codec="str") as log:
        assert isinstance(log, RemoteLog)
        log.create_topic(topic, 1)
        doc = {"n": 1, "tags": ["a", "é"], "nested": {"ok": True}, "none": None}
        log.publish(topic, doc, key="k1").result(RESULT_TIMEOUT)
        with log.subscribe(topic) as consumer:
            (message,) = read_all(consumer, 1)
        assert (message.key, message.value) == ("k1", doc)

        models = unique("models")
        log.create_topic(models, 1)
        orders = [Order(id=i, item=f"item-{i}", amount=i * 1.5) for i in range(3)]
        typed = RemoteLog(riel.bootstrap, value_codec=Order)
        try:
            typed.publish_many(models, orders).result(RESULT_TIMEOUT)
            with typed.subscribe(models) as consumer:
                assert [m.value for m in read_all(consumer, 3)] == orders
        finally:
            typed.close()
        # A consumer may override the log's codec: the same bytes as plain JSON.
        with log.subscribe(models, value_codec="json") as consumer:
            assert [m.value for m in read_all(consumer, 3)] == [o.model_dump() for o in orders]


# ------------------------------------------------------------------------------------------- consuming


def wait_for_split(consumers: list[RemoteConsumer], partitions: int, timeout: float = RESULT_TIMEOUT) -> None:
    """Poll every member until the group's assignment covers all partitions, each member holding some."""
    deadline = time.monotonic() + timeout
    while True:
        assigned = [c.assignment() for c in consumers]
        union = set().union(*assigned)
        if len(union) == partitions and sum(len(a) for a in assigned) == partitions and all(assigned):
            return
        assert time.monotonic() < deadline, f"group never split the partitions: {assigned}"
        for c in consumers:
            assert c.poll(0.05) is None, "nothing was published yet"


def test_group_members_split_partitions(log: RemoteLog) -> None:
    topic, group = unique("split"), unique("g")
    log.create_topic(topic, 4)
    a = log.subscribe(topic, group=group)
    b: RemoteConsumer | None = None
    try:
        wait_for_split([a], 4)
        a.pause()  # a rebalance hands partitions out afresh: unpaused, as in Kafka's Java client
        assert a.paused() == {(topic, p) for p in range(4)}
        b = log.subscribe(topic, group=group)
        wait_for_split([a, b], 4)
        assert a.paused() == set()
        assert a.assignment().isdisjoint(b.assignment())
        assert len(a.assignment()) == len(b.assignment()) == 2

        for p in range(4):
            log.publish_many(topic, [f"{p}-{i}".encode() for i in range(5)], partition=p).result(
                RESULT_TIMEOUT
            )
        got: dict[str, list[Message]] = {"a": [], "b": []}
        deadline = time.monotonic() + RESULT_TIMEOUT
        while len(got["a"]) + len(got["b"]) < 20:
            assert time.monotonic() < deadline, f"read {len(got['a'])} + {len(got['b'])} of 20"
            for name, c in (("a", a), ("b", b)):
                message = c.poll(0.05)
                if message is not None:
                    got[name].append(message)
        assert {m.partition for m in got["a"]} == {p for _, p in a.assignment()}
        assert {m.partition for m in got["b"]} == {p for _, p in b.assignment()}
        seen = sorted((m.partition, m.offset) for m in got["a"] + got["b"])
        assert seen == [(p, i) for p in range(4) for i in range(5)]
    finally:
        a.close()
        if b is not None:
            b.close()


def test_manual_commit_and_restart_resumes_after_committed_offset(log: RemoteLog) -> None:
    topic, group = unique("resume"), unique("g")
    log.create_topic(topic, 1)
    log.publish_many(topic, [f"m{i}".encode() for i in range(10)]).result(RESULT_TIMEOUT)

    first = log.subscribe(topic, group=group, auto_commit=False)
    try:
        got = [first.poll(RESULT_TIMEOUT) for _ in range(6)]
        assert [m.offset for m in got if m is not None] == list(range(6))
        fourth = got[3]
        assert fourth is not None
        first.commit(fourth)
        assert first.committed() == {(topic, 0): 4}
        assert first.position(topic, 0) == 6
    finally:
        first.close()  # auto_commit=False: closing commits nothing more

    second = log.subscribe(topic, group=group, auto_commit=False)
    try:
        assert second.position(topic, 0) == 4
        resumed = read_all(second, 6)
        assert [m.offset for m in resumed] == list(range(4, 10))
        second.commit(offsets={(topic, 0): 8})
        assert second.committed([(topic, 0)]) == {(topic, 0): 8}
    finally:
        second.close()


def test_auto_commit_covers_only_messages_handed_out(log: RemoteLog) -> None:
    topic, group = unique("auto"), unique("g")
    log.create_topic(topic, 1)
    log.publish_many(topic, [f"m{i}".encode() for i in range(10)]).result(RESULT_TIMEOUT)
    with log.subscribe(topic, group=group) as consumer:
        got = [consumer.poll(RESULT_TIMEOUT) for _ in range(3)]
        assert [m.offset for m in got if m is not None] == [0, 1, 2]
        time.sleep(0.3)  # let librdkafka prefetch the rest: none of it may be committed
    # Closing committed the position after the three messages handed out, not librdkafka's fetch position.
    with log.subscribe(topic, group=group) as again:
        assert again.committed([(topic, 0)]) == {(topic, 0): 3}
        assert [m.offset for m in read_all(again, 7)] == list(range(3, 10))


def test_consumer_without_group_reads_every_partition_and_cannot_commit(log: RemoteLog) -> None:
    topic = unique("nogroup")
    log.create_topic(topic, 3)
    published = [log.publish(topic, f"v{i}", key=f"k{i}").result(RESULT_TIMEOUT) for i in range(30)]
    assert len({p.partition for p in published}) == 3, "keys should spread over every partition"
    with log.subscribe(topic) as consumer:
        assert consumer.assignment() == {(topic, 0), (topic, 1), (topic, 2)}
        got = read_all(consumer, 30)
        assert sorted((m.partition, m.offset) for m in got) == sorted(
            (p.partition, p.offset) for p in published
        )
        with pytest.raises(KafkaApiError, match="group") as no_group:
            consumer.commit()
        assert no_group.value.code == ErrorCode.INVALID_GROUP_ID
    with log.subscribe(topic, start="latest") as late:
        assert late.poll(0.5) is None
        log.publish(topic, b"new", partition=1).result(RESULT_TIMEOUT)
        message = late.poll(RESULT_TIMEOUT)
        assert message is not None and message.value == b"new"


def test_seek_seek_to_time_beginning_and_end(log: RemoteLog) -> None:
    topic = unique("seek")
    log.create_topic(topic, 1)
    base = int(time.time() * 1000) - 60_000
    publish_ts(log, topic, [f"m{i}".encode() for i in range(10)], 0, [base + 100 * i for i in range(10)])
    with log.subscribe(topic) as consumer:
        consumer.seek(topic, 0, 5)
        assert consumer.position(topic, 0) == 5
        message = consumer.poll(RESULT_TIMEOUT)
        assert message is not None and message.offset == 5
        assert consumer.position(topic, 0) == 6

        consumer.seek_to_time(datetime.fromtimestamp((base + 650) / 1000, tz=UTC))
        message = consumer.poll(RESULT_TIMEOUT)
        assert message is not None and (message.offset, message.timestamp) == (7, base + 700)
        consumer.seek_to_time(base + 300)  # milliseconds work too
        message = consumer.poll(RESULT_TIMEOUT)
        assert message is not None and message.offset == 3

        consumer.seek_to_beginning()
        message = consumer.poll(RESULT_TIMEOUT)
        assert message is not None and message.offset == 0

        consumer.seek_to_end()
        assert consumer.position(topic, 0) == 10
        assert consumer.poll(0.5) is None

        consumer.seek_to_time(base + 10_000)  # later than every message: the end
        assert consumer.position(topic, 0) == 10
        with pytest.raises(NotAssignedError, match="not assigned"):
            consumer.seek(topic, 3, 0)


def test_seek_on_fresh_group_member_waits_for_its_assignment(log: RemoteLog) -> None:
    topic, group = unique("seekgroup"), unique("g")
    log.create_topic(topic, 2)
    log.publish_many(topic, [f"m{i}".encode() for i in range(10)], partition=1).result(RESULT_TIMEOUT)
    with log.subscribe(topic, group=group) as consumer:
        consumer.seek(topic, 1, 7)  # right after subscribe: no assignment has arrived yet
        assert consumer.assignment() == {(topic, 0), (topic, 1)}
        assert [m.offset for m in read_all(consumer, 3)] == [7, 8, 9]


def test_pause_and_resume(log: RemoteLog) -> None:
    topic = unique("pause")
    log.create_topic(topic, 2)
    for p in (0, 1):
        log.publish_many(topic, [f"{p}-{i}".encode() for i in range(20)], partition=p).result(RESULT_TIMEOUT)
    with log.subscribe(topic) as consumer:
        consumer.pause([(topic, 0)])
        assert consumer.paused() == {(topic, 0)}
        while_paused = read_all(consumer, 20)
        assert {m.partition for m in while_paused} == {1}
        consumer.resume([(topic, 0)])
        assert consumer.paused() == set()
        after = read_all(consumer, 20)
        assert [(m.partition, m.offset) for m in after] == [(0, i) for i in range(20)]

        consumer.pause()  # default: every assigned partition
        assert consumer.paused() == {(topic, 0), (topic, 1)}
        log.publish(topic, b"late", partition=1).result(RESULT_TIMEOUT)
        assert consumer.poll(1.0) is None
        consumer.resume()
        message = consumer.poll(RESULT_TIMEOUT)
        assert message is not None and message.value == b"late"


# ---------------------------------------------------------------------------------------------- replay


def test_replay_by_offset_range_merges_partitions_in_timestamp_order(log: RemoteLog) -> None:
    topic = unique("replay")
    log.create_topic(topic, 3)
    base = int(time.time() * 1000) - 60_000
    # Interleaved timestamps across partitions, with ties between partitions 0 and 2.
    even = [base + 10 * i for i in range(8)]
    stamps = {0: even, 1: [t + 5 for t in even], 2: even}
    for p, ts in stamps.items():
        publish_ts(log, topic, [f"{p}-{i}".encode() for i in range(8)], p, ts)

    got = list(log.replay(topic, since=2, until=5))
    expected = sorted((stamps[p][i], p, i) for p in range(3) for i in range(2, 5))
    assert [(m.timestamp, m.partition, m.offset) for m in got] == expected
    assert [m.value for m in got] == [f"{p}-{i}".encode() for _, p, i in expected]

    everything = list(log.replay(topic))
    assert len(everything) == 24
    assert [(m.timestamp, m.partition) for m in everything] == sorted(
        (m.timestamp, m.partition) for m in everything
    )
    assert list(log.replay(topic, since=8)) == []
    assert len(list(log.replay(topic, until=100))) == 24  # capped at the end as of the call


def test_replay_with_tiny_buffers_pauses_and_resumes_partitions_losslessly(
    riel: RielServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "_REPLAY_BUFFER", 2)  # pause a partition once 2 messages are buffered
    topic = unique("replay-small")
    base = int(time.time() * 1000) - 60_000
    # Partition 2's messages all come after the others': partitions 0 and 1 are paused and resumed many
    # times while the merge waits for partition 2's first message.
    stamps = {
        0: [base + 2 * i for i in range(40)],
        1: [base + 2 * i + 1 for i in range(40)],
        2: [base + 1000 + i for i in range(40)],
    }
    # A resumed partition waits for the fetch in flight, which the broker holds up to fetch.wait.max.ms.
    log = RemoteLog(riel.bootstrap, fetch_wait_max_ms=10)
    try:
        log.create_topic(topic, 3)
        for p, ts in stamps.items():
            publish_ts(log, topic, [f"{p}-{i}".encode() for i in range(40)], p, ts)
        got = [(m.timestamp, m.partition, m.offset, m.value) for m in log.replay(topic)]
    finally:
        log.close()
    assert got == sorted((stamps[p][i], p, i, f"{p}-{i}".encode()) for p in range(3) for i in range(40))


def test_replay_between_two_times_yields_exactly_the_middle_burst(log: RemoteLog) -> None:
    topic = unique("bursts")
    log.create_topic(topic, 3)

    def burst(tag: str) -> list[Published]:
        return log.publish_many(topic, [f"{tag}{i}".encode() for i in range(9)]).result(RESULT_TIMEOUT)

    a = burst("a")
    time.sleep(0.05)
    since = datetime.now(UTC)
    time.sleep(0.05)
    b = burst("b") + [log.publish(topic, f"b-key{i}", key=f"k{i}").result(RESULT_TIMEOUT) for i in range(6)]
    time.sleep(0.05)
    until = datetime.now(UTC)
    time.sleep(0.05)
    c = burst("c")

    def order(published: list[Published]) -> list[tuple[int, int, int]]:
        return sorted((p.timestamp, p.partition, p.offset) for p in published)

    got = list(log.replay(topic, since=since, until=until))
    assert [(m.timestamp, m.partition, m.offset) for m in got] == order(b)
    assert {m.value[:1] for m in got} == {b"b"}
    assert [(m.timestamp, m.partition, m.offset) for m in log.replay(topic, since=until)] == order(c)
    assert [(m.timestamp, m.partition, m.offset) for m in log.replay(topic, until=since)] == order(a)
    assert list(log.replay(topic, since=until + timedelta(hours=1))) == []


def test_replay_of_missing_topic_raises(log: RemoteLog) -> None:
    with pytest.raises(UnknownTopicError):
        list(log.replay(unique("missing")))


# ------------------------------------------------------------------------------------------------- lag


def test_lag_after_partial_consumption(log: RemoteLog) -> None:
    topic, group = unique("lag"), unique("g")
    log.create_topic(topic, 3)
    for p in range(3):
        log.publish_many(topic, [b"x"] * 10, partition=p).result(RESULT_TIMEOUT)
    assert log.lag(group) == {}
    with log.subscribe(topic, group=group, auto_commit=False) as consumer:
        got = [consumer.poll(RESULT_TIMEOUT) for _ in range(12)]
        assert all(m is not None for m in got)
        consumer.commit()
        read = {(topic, p): 0 for p in range(3)}
        for m in got:
            assert m is not None
            read[(m.topic, m.partition)] += 1
        positions = {tp: consumer.position(*tp) for tp in read if read[tp]}
    assert log.lag(group) == {tp: 10 - position for tp, position in positions.items()}
    assert sum(positions.values()) == 12


# ----------------------------------------------------------------------------------- settings, close


def test_settings_go_only_to_the_clients_that_take_them() -> None:
    producer, consumer, admin = _settings_by_client(
        {"linger.ms": 1, "client.id": "c"},
        {"linger_ms": 7, "heartbeat_interval_ms": 100, "log_level": 3, "socket_timeout_ms": 9000},
    )
    assert producer == {"linger.ms": 7, "client.id": "c", "log_level": 3, "socket.timeout.ms": 9000}
    assert consumer == {
        "client.id": "c",
        "heartbeat.interval.ms": 100,
        "log_level": 3,
        "socket.timeout.ms": 9000,
    }
    assert admin == {"client.id": "c", "log_level": 3, "socket.timeout.ms": 9000}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def confwarns(records: Records) -> list[str]:
    return [line for line in records.lines if "CONFWARN" in line]


def test_no_librdkafka_warnings_for_settings_of_the_other_client_kind(riel: RielServer) -> None:
    from confluent_kafka import Consumer as KafkaConsumer

    records = Records()
    logger = logging.getLogger(unique("rdkafka"))
    logger.addHandler(records)
    logger.propagate = False
    settings: dict[str, Any] = {"linger_ms": 20, "heartbeat_interval_ms": 500, "config": {"logger": logger}}

    # The check itself: a consumer given a producer property does log a CONFWARN.
    raw = KafkaConsumer(
        {"bootstrap.servers": riel.bootstrap, "group.id": "x", "linger.ms": 20, "logger": logger}
    )
    raw.poll(0.2)
    raw.close()
    assert confwarns(records), (
        "librdkafka's CONFWARN did not reach the logger: the check below proves nothing"
    )
    records.lines.clear()

    topic = unique("quiet")
    log = RemoteLog(riel.bootstrap, **settings)
    try:
        log.create_topic(topic, 1)
        log.publish(topic, b"x").result(RESULT_TIMEOUT)
        with log.subscribe(topic, group=unique("g")) as consumer:
            assert consumer.poll(RESULT_TIMEOUT) is not None
        assert len(list(log.replay(topic))) == 1
        log._admin.poll(0.1)  # the admin client forwards its log lines only when polled
    finally:
        log.close()
    assert confwarns(records) == []


def test_close_closes_consumers_and_is_idempotent(riel: RielServer) -> None:
    topic = unique("close")
    log = RemoteLog(riel.bootstrap)
    log.create_topic(topic, 1)
    consumer = log.subscribe(topic)
    future = log.publish(topic, b"queued before close")
    log.close()
    assert future.done() and future.result(0).offset == 0
    assert consumer.closed
    log.close()
    consumer.close()
    with pytest.raises(RuntimeError, match="closed"):
        log.publish(topic, b"after close")
    with pytest.raises(RuntimeError, match="closed"):
        consumer.poll(0)
