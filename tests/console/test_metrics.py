"""``/metrics`` and ``/health``: a real ``riel serve`` driven by confluent-kafka over TCP, scraped over
HTTP and parsed with prometheus-client's own parser; plus in-process tests of the pieces (the fetch
accounting's offsets, group lag, the degraded health answer).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from starlette.applications import Starlette

from conftest import RielServer, ServerFactory
from e2e.helpers import unique_topic
from riel.config import BrokerConfig
from riel.console import metrics
from riel.console.lag import GroupPartitionLag, group_lags, total_lag_by_group
from riel.coordinator.coordinator import OffsetCommitEntry
from riel.records import decode_batches, encode_batch
from riel.records.batch import Record
from riel.server.app import RielServer as InProcessServer
from riel.storage import PartitionLog

CLIENT_TIMEOUT_S = 20.0
TEST_TIMEOUT_S = 60.0
N = 300
NOW_MS = 1_700_000_000_000


# ------------------------------------------------------------------------------------------ helpers


def scrape(server: RielServer) -> dict[str, list[Sample]]:
    """Every sample of ``/metrics``, by metric family name (as the parser names it)."""
    response = httpx.get(f"{server.http_url}/metrics", timeout=CLIENT_TIMEOUT_S)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(response.text):
        families.setdefault(family.name, []).extend(family.samples)
    return families


def value(families: dict[str, list[Sample]], sample_name: str, **labels: str) -> float:
    """The one sample called ``sample_name`` whose labels include ``labels``."""
    found = [
        s
        for samples in families.values()
        for s in samples
        if s.name == sample_name and labels.items() <= s.labels.items()
    ]
    assert len(found) == 1, f"{sample_name}{labels}: {found}"
    return found[0].value


def check_histogram(families: dict[str, list[Sample]], api: str) -> None:
    """Cumulative buckets ending with +Inf == count, a positive sum, at least one request."""
    samples = [s for s in families["riel_request_duration_seconds"] if s.labels.get("api") == api]
    buckets = [(float(s.labels["le"]), s.value) for s in samples if s.name.endswith("_bucket")]
    count = value(families, "riel_request_duration_seconds_count", api=api)
    total = value(families, "riel_request_duration_seconds_sum", api=api)
    assert buckets, f"no {api} histogram"
    assert [le for le, _ in buckets] == sorted(le for le, _ in buckets)
    assert buckets[-1][0] == float("inf")
    counts = [c for _, c in buckets]
    assert counts == sorted(counts), f"{api} buckets are not cumulative: {counts}"
    assert counts[-1] == count >= 1
    assert 0 < total < count * 60


def produce(bootstrap: str, topic: str, n: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    errors: list[Any] = []
    for i in range(n):
        producer.produce(topic, value=b"v%05d" % i, key=b"k%d" % (i % 7), on_delivery=_collect(errors))
        producer.poll(0)
    assert producer.flush(CLIENT_TIMEOUT_S) == 0, "messages left undelivered"
    assert not errors, errors


def _collect(errors: list[Any]) -> Any:
    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(err)

    return on_delivery


def consume_all(consumer: Any, topic: str, n: int) -> None:
    from confluent_kafka import TopicPartition

    consumer.assign([TopicPartition(topic, 0, 0)])
    got = 0
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while got < n:
        assert time.monotonic() < deadline, f"consumed {got} of {n}"
        for msg in consumer.consume(500, 0.5):
            assert msg.error() is None, msg.error()
            got += 1
    assert got == n


def commit(consumer: Any, topic: str, offset: int) -> None:
    from confluent_kafka import TopicPartition

    result = consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    assert result is not None and result[0].error is None


def segment_bytes(data_dir: Path, topic: str, partition: int) -> int:
    return sum(p.stat().st_size for p in (data_dir / "topics" / f"{topic}-{partition}").glob("*.log"))


@pytest.fixture
def server(riel_factory: ServerFactory) -> RielServer:
    return riel_factory(num_partitions=1)


# -------------------------------------------------------------------------------- over the network


@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_counters_move_after_produce_and_consume(server: RielServer) -> None:
    from confluent_kafka import Consumer

    topic = unique_topic("metrics")
    before = scrape(server)
    assert "riel_topic_bytes_in" in before  # the family exists even with no topic yet

    produce(server.bootstrap, topic, N)
    after_produce = scrape(server)
    assert value(after_produce, "riel_topic_messages_in_total", topic=topic) == N
    size = segment_bytes(server.data_dir, topic, 0)
    assert size > 0
    # Batches are stored verbatim: the bytes appended are exactly the bytes produced.
    assert value(after_produce, "riel_topic_bytes_in_total", topic=topic) == size
    assert value(after_produce, "riel_partition_size_bytes", topic=topic, partition="0") == size
    assert value(after_produce, "riel_partition_log_end_offset", topic=topic, partition="0") == N
    assert value(after_produce, "riel_partition_high_watermark", topic=topic, partition="0") == N
    assert value(after_produce, "riel_partition_log_start_offset", topic=topic, partition="0") == 0
    assert value(after_produce, "riel_partition_offline", topic=topic, partition="0") == 0
    assert value(after_produce, "riel_topic_messages_out_total", topic=topic) == 0
    check_histogram(after_produce, "Produce")
    assert value(after_produce, "riel_connections_opened_total") >= 1

    group = unique_topic("metrics-group")
    consumer = Consumer(
        {
            "bootstrap.servers": server.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consume_all(consumer, topic, N)
        k = N // 3
        commit(consumer, topic, k)
        while_connected = scrape(server)
        assert value(while_connected, "riel_connections") >= 1
        assert value(while_connected, "riel_topic_messages_out_total", topic=topic) >= N
        assert value(while_connected, "riel_topic_bytes_out_total", topic=topic) >= size
        check_histogram(while_connected, "Fetch")
        labels = {"group": group, "topic": topic, "partition": "0"}
        assert value(while_connected, "riel_consumer_group_committed_offset", **labels) == k
        assert value(while_connected, "riel_consumer_group_lag", **labels) == N - k

        commit(consumer, topic, N)
        caught_up = scrape(server)
        assert value(caught_up, "riel_consumer_group_lag", **labels) == 0
        end = value(caught_up, "riel_partition_high_watermark", topic=topic, partition="0")
        committed = value(caught_up, "riel_consumer_group_committed_offset", **labels)
        assert end - committed == 0
    finally:
        consumer.close()
    # Every client gone: the gauge drops back to 0 and every connection opened was counted closed.
    deadline = time.monotonic() + 10
    while True:
        families = scrape(server)
        opened = value(families, "riel_connections_opened_total")
        closed = value(families, "riel_connections_closed_total")
        if value(families, "riel_connections") == 0 and opened == closed:
            break
        assert time.monotonic() < deadline, f"connections still open: {opened} opened, {closed} closed"
        time.sleep(0.05)
    assert opened >= 2  # the producer's and the consumer's at least


@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_health_is_ok(server: RielServer) -> None:
    produce(server.bootstrap, unique_topic("health"), 1)
    response = httpx.get(f"{server.http_url}/health", timeout=CLIENT_TIMEOUT_S)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["topics"] == 1 and body["partitions"] == 1
    assert body["offline_partitions"] == []
    assert body["uptime_seconds"] >= 0


# ------------------------------------------------------------------------------------- in process


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, InProcessServer]]:
    """A started broker in this process (Kafka port 0, no HTTP listener) and the loop it runs on."""
    loop = asyncio.new_event_loop()
    broker = InProcessServer(BrokerConfig(data_dir=tmp_path / "data", port=0, http_enabled=False))
    loop.run_until_complete(broker.start())
    try:
        yield loop, broker
    finally:
        loop.run_until_complete(broker.stop())
        loop.close()


def get(loop: asyncio.AbstractEventLoop, broker: InProcessServer, path: str) -> httpx.Response:
    app = Starlette(routes=metrics.routes(broker))

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://riel") as client:
            return await client.get(path)

    return loop.run_until_complete(call())


def append(plog: PartitionLog, count: int) -> None:
    records = [Record(0, NOW_MS + i, None, b"x" * 10) for i in range(count)]
    plog.append(bytearray(encode_batch(records)), NOW_MS)


def test_health_degraded_when_a_partition_is_offline(
    in_process: tuple[asyncio.AbstractEventLoop, InProcessServer],
) -> None:
    loop, broker = in_process
    broker.log_manager.create_topic("t", 2)
    assert get(loop, broker, "/health").json()["status"] == "ok"
    plog = broker.log_manager.partition("t", 1)
    assert plog is not None
    plog._failure = "simulated fsync failure"  # what a failed write leaves behind
    try:
        response = get(loop, broker, "/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "degraded"
        assert body["offline_partitions"] == ["t-1"]
        families = {f.name: f for f in text_string_to_metric_families(get(loop, broker, "/metrics").text)}
        offline = {s.labels["partition"]: s.value for s in families["riel_partition_offline"].samples}
        assert offline == {"0": 0, "1": 1}
    finally:
        plog._failure = None


def test_group_lags(in_process: tuple[asyncio.AbstractEventLoop, InProcessServer]) -> None:
    _, broker = in_process
    broker.log_manager.create_topic("a", 2)
    broker.log_manager.create_topic("gone", 1)
    plog = broker.log_manager.partition("a", 0)
    assert plog is not None
    append(plog, 10)
    assert group_lags(broker) == []

    def commit(group: str, *entries: OffsetCommitEntry) -> None:
        assert all(code == 0 for code in broker.groups.commit_offsets(group, "", None, -1, list(entries)))

    commit("g1", OffsetCommitEntry("a", 0, 4), OffsetCommitEntry("a", 1, 0))
    commit("g2", OffsetCommitEntry("a", 0, 10), OffsetCommitEntry("gone", 0, 0))
    broker.log_manager.delete_topic("gone")  # offsets of a deleted topic: end and lag unknown
    rows = group_lags(broker)
    assert rows == [
        GroupPartitionLag("g1", "a", 0, committed=4, end_offset=10, lag=6),
        GroupPartitionLag("g1", "a", 1, committed=0, end_offset=0, lag=0),
        GroupPartitionLag("g2", "a", 0, committed=10, end_offset=10, lag=0),
        GroupPartitionLag("g2", "gone", 0, committed=0, end_offset=None, lag=None),
    ]
    assert group_lags(broker, "g1") == rows[:2]
    assert group_lags(broker, "nobody") == []
    assert total_lag_by_group(rows) == {"g1": 6, "g2": 0}


@pytest.mark.parametrize("flush", ["os", "always"])
def test_read_with_next_offset_matches_the_batches_returned(tmp_path: Path, flush: str) -> None:
    """The offset Fetch counts messages up to is the end of the last batch in the slice, for every
    start offset and byte budget (exact fits, oversized first batches, several segments)."""
    from riel.config import FlushPolicy
    from riel.storage import LogConfig

    config = LogConfig.from_configs({"segment.bytes": "1500", "index.interval.bytes": "150"})
    plog = PartitionLog.open(tmp_path / "p-0", config, FlushPolicy.parse(flush), now_ms=NOW_MS)
    try:
        for count in (1, 3, 2, 5, 1, 4, 2, 1, 3, 6, 1, 2, 2, 7, 1):
            append(plog, count)
        if flush == "always":
            plog.flush()
        sizes = sorted({len(b) for b in _all_batches(plog)})
        budgets = {1, 50, 200, 400, 1000, 5000} | set(sizes) | {2 * s for s in sizes} | {sum(sizes)}
        checked = 0
        for offset in range(plog.log_start_offset, plog.high_watermark):
            for budget in sorted(budgets):
                for min_one in (True, False):
                    found = plog.read_with_next_offset(offset, budget, min_one=min_one)
                    plain = plog.read(offset, budget, min_one=min_one)
                    if found is None:
                        assert plain is None
                        continue
                    chunk, next_offset = found
                    assert plain is not None
                    try:
                        data = chunk.read_bytes()
                        assert (plain.position, plain.size) == (chunk.position, chunk.size)
                    finally:
                        chunk.close()
                        plain.close()
                    batches = decode_batches(data)
                    assert batches
                    assert next_offset == batches[-1][0].next_offset, (offset, budget, min_one)
                    checked += 1
        assert checked > 100
    finally:
        plog.close()


def _all_batches(plog: PartitionLog) -> list[bytes]:
    chunk = plog.read(plog.log_start_offset, 1 << 20)
    out: list[bytes] = []
    offset = plog.log_start_offset
    while chunk is not None:
        try:
            data = chunk.read_bytes()
        finally:
            chunk.close()
        position = 0
        for header, _ in decode_batches(data):
            out.append(data[position : position + header.size])
            position += header.size
            offset = header.next_offset
        chunk = plog.read(offset, 1 << 20) if offset < plog.high_watermark else None
    return out


def test_an_idempotent_retry_is_reported_as_a_duplicate(tmp_path: Path) -> None:
    """Produce counts only what is written: a retried batch is acknowledged but not appended again."""
    from riel.config import FlushPolicy
    from riel.storage import LogConfig

    plog = PartitionLog.open(tmp_path / "p-0", LogConfig(), FlushPolicy.parse("os"), now_ms=NOW_MS)
    try:
        records = [Record(0, NOW_MS, None, b"x")] * 3
        first = encode_batch(records, producer_id=7, producer_epoch=0, base_sequence=0)
        result = plog.append(bytearray(first), NOW_MS)
        assert not result.duplicate
        retry = plog.append(bytearray(first), NOW_MS)
        assert retry.duplicate
        assert (retry.base_offset, retry.last_offset) == (result.base_offset, result.last_offset) == (0, 2)
        assert plog.log_end_offset == 3
    finally:
        plog.close()
