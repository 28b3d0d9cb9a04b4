"""Helpers for end-to-end tests: topic admin, bounded consume loops per client, raw Kafka frames.

Everything here talks to a real broker over TCP and is bounded in time: every loop has a deadline and
every client call a timeout, so a broker that hangs fails a test instead of the whole run.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import struct
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Headers = tuple[tuple[str, bytes | None], ...]

CLIENT_TIMEOUT_MS = 20_000


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Rec:
    """One record as read back by a consumer (or as produced, with partition/offset unknown)."""

    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    partition: int = -1
    offset: int = -1
    timestamp: int = -1

    def content(self) -> tuple[bytes | None, bytes | None, Headers]:
        return (self.key, self.value, self.headers)


# --------------------------------------------------------------------------------------------- admin


@contextlib.contextmanager
def kp_admin(bootstrap: str) -> Iterator[Any]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=CLIENT_TIMEOUT_MS, client_id="riel-e2e-admin"
    )
    try:
        yield admin
    finally:
        admin.close()


def create_topic(bootstrap: str, name: str, partitions: int, configs: dict[str, str] | None = None) -> None:
    """Create a topic explicitly with kafka-python's admin client and wait until it has leaders."""
    with kp_admin(bootstrap) as admin:
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1, "configs": configs or {}}},
            timeout_ms=CLIENT_TIMEOUT_MS,
        )
        admin.wait_for_topics([name], timeout_ms=CLIENT_TIMEOUT_MS)


def confluent_admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": CLIENT_TIMEOUT_MS})


# ------------------------------------------------------------------------------------------ produce


def make_messages(n: int, *, keys: int = 50, value_size: int = 0, tag: str = "m") -> list[Rec]:
    """n keyed messages; value carries the global sequence number so per-key order is checkable."""
    out = []
    for i in range(n):
        key = f"key-{i % keys:03d}".encode()
        body = f"{tag}-{i:07d}"
        value = (body + "." * max(0, value_size - len(body))).encode()
        headers: Headers = (("seq", str(i).encode()), ("source", b"riel-e2e"), ("empty", b""))
        out.append(Rec(key, value, headers))
    return out


def seq_of(rec: Rec) -> int:
    assert rec.value is not None
    return int(rec.value.split(b"-")[1].split(b".")[0])


def confluent_produce(
    bootstrap: str,
    topic: str,
    messages: Sequence[Rec],
    *,
    conf: dict[str, Any] | None = None,
    partition: int | None = None,
    timestamps: Sequence[int] | None = None,
    timeout: float = 60.0,
) -> list[tuple[int, int]]:
    """Produce with confluent-kafka; returns (partition, offset) per message in order; fails on any error."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "message.timeout.ms": int(timeout * 1000),
            **(conf or {}),
        }
    )
    results: list[tuple[int, int] | None] = [None] * len(messages)
    errors: list[str] = []

    def on_delivery(idx: int) -> Any:
        def cb(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(f"message {idx}: {err}")
            else:
                results[idx] = (msg.partition(), msg.offset())

        return cb

    deadline = time.monotonic() + timeout
    for i, m in enumerate(messages):
        kwargs: dict[str, Any] = {
            "key": m.key,
            "value": m.value,
            "headers": list(m.headers),
            "on_delivery": on_delivery(i),
        }
        if partition is not None:
            kwargs["partition"] = partition
        if timestamps is not None:
            kwargs["timestamp"] = timestamps[i]
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
                assert time.monotonic() < deadline, "confluent producer queue stayed full"
        producer.poll(0)
    remaining = producer.flush(max(1.0, deadline - time.monotonic()))
    assert remaining == 0, f"{remaining} messages undelivered after {timeout}s; errors: {errors[:5]}"
    assert not errors, f"{len(errors)} delivery errors, first: {errors[:5]}"
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def kp_producer(bootstrap: str, **conf: Any) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=CLIENT_TIMEOUT_MS, **conf)


def kp_produce(
    bootstrap: str,
    topic: str,
    messages: Sequence[Rec],
    *,
    partition: int | None = None,
    timestamps: Sequence[int] | None = None,
    timeout: float = 60.0,
    **conf: Any,
) -> list[tuple[int, int]]:
    """Produce with kafka-python (default config: idempotent); returns (partition, offset) per message."""
    producer = kp_producer(bootstrap, **conf)
    try:
        futures = [
            producer.send(
                topic,
                key=m.key,
                value=m.value,
                headers=list(m.headers),
                partition=partition,
                timestamp_ms=None if timestamps is None else timestamps[i],
            )
            for i, m in enumerate(messages)
        ]
        producer.flush(timeout=timeout)
        out = []
        for f in futures:
            md = f.get(timeout=timeout)
            out.append((md.partition, md.offset))
        return out
    finally:
        producer.close(timeout=10)


# ------------------------------------------------------------------------------------------ consume


def confluent_consumer(bootstrap: str, **conf: Any) -> Any:
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"riel-e2e-{uuid.uuid4().hex[:8]}",  # required by librdkafka; never joined
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "check.crcs": True,
            "enable.partition.eof": True,
            "fetch.queue.backoff.ms": 0,
            **conf,
        }
    )


def confluent_consume(
    bootstrap: str,
    topic: str,
    start: dict[int, int],
    end: dict[int, int],
    *,
    timeout: float = 60.0,
    **conf: Any,
) -> list[Rec]:
    """Read partitions from start[p] (an offset or OFFSET_BEGINNING) until offset end[p] (exclusive)."""
    from confluent_kafka import KafkaError, TopicPartition

    consumer = confluent_consumer(bootstrap, **conf)
    out: list[Rec] = []
    try:
        consumer.assign([TopicPartition(topic, p, off) for p, off in start.items()])
        next_offset = {p: (off if off >= 0 else 0) for p, off in start.items()}
        pending = {p for p in start if next_offset[p] < end[p]}
        deadline = time.monotonic() + timeout
        while pending:
            assert time.monotonic() < deadline, (
                f"confluent consume timed out; positions {next_offset}, ends {end}"
            )
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"confluent consumer error: {err}")
                p = msg.partition()
                out.append(
                    Rec(
                        msg.key(),
                        msg.value(),
                        tuple(msg.headers() or ()),
                        p,
                        msg.offset(),
                        msg.timestamp()[1],
                    )
                )
                next_offset[p] = msg.offset() + 1
                if next_offset[p] >= end[p]:
                    pending.discard(p)
        return out
    finally:
        consumer.close()


def kp_consumer(bootstrap: str, **conf: Any) -> Any:
    from kafka import KafkaConsumer

    settings: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "check_crcs": True,
        "request_timeout_ms": CLIENT_TIMEOUT_MS,
    }
    settings.update(conf)
    return KafkaConsumer(**settings)


def kp_consume(
    bootstrap: str,
    topic: str,
    start: dict[int, int | None],
    end: dict[int, int],
    *,
    timeout: float = 60.0,
    **conf: Any,
) -> list[Rec]:
    """kafka-python: assign, seek to start[p] (None = beginning), poll until offset end[p] (exclusive)."""
    from kafka import TopicPartition

    consumer = kp_consumer(bootstrap, **conf)
    out: list[Rec] = []
    try:
        tps = {p: TopicPartition(topic, p) for p in start}
        consumer.assign(list(tps.values()))
        for p, off in start.items():
            if off is None:
                consumer.seek_to_beginning(tps[p])
            else:
                consumer.seek(tps[p], off)
        pending = {p for p in start if end[p] > (start[p] or 0)}
        positions: dict[int, int] = {}
        deadline = time.monotonic() + timeout
        while pending:
            assert time.monotonic() < deadline, (
                f"kafka-python consume timed out; positions {positions}, ends {end}"
            )
            batch = consumer.poll(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                for r in records:
                    headers = tuple((k, v) for k, v in (r.headers or []))
                    out.append(Rec(r.key, r.value, headers, tp.partition, r.offset, r.timestamp))
                    positions[tp.partition] = r.offset + 1
                    if r.offset + 1 >= end[tp.partition]:
                        pending.discard(tp.partition)
        return out
    finally:
        consumer.close()


def confluent_watermarks(
    bootstrap: str, topic: str, partition: int, timeout: float = 20.0
) -> tuple[int, int]:
    from confluent_kafka import TopicPartition

    consumer = confluent_consumer(bootstrap)
    try:
        lo, hi = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout, cached=False
        )
        return int(lo), int(hi)
    finally:
        consumer.close()


# ----------------------------------------------------------------------------------------- checking


def assert_same_content(produced: Sequence[Rec], consumed: Sequence[Rec]) -> None:
    """Exact multiset equality of (key, value, headers), with a readable first difference."""
    want = sorted((m.content() for m in produced), key=repr)
    got = sorted((m.content() for m in consumed), key=repr)
    if want != got:
        missing = set(map(repr, want)) - set(map(repr, got))
        extra = set(map(repr, got)) - set(map(repr, want))
        raise AssertionError(
            f"content differs: produced {len(want)}, consumed {len(got)}; "
            f"missing e.g. {sorted(missing)[:3]}, unexpected e.g. {sorted(extra)[:3]}"
        )


def assert_partition_logs_well_formed(consumed: Sequence[Rec], partitions: Iterable[int]) -> None:
    """Per partition, offsets are 0..n-1 in consumption order, each exactly once."""
    by_p: dict[int, list[int]] = defaultdict(list)
    for r in consumed:
        by_p[r.partition].append(r.offset)
    for p in partitions:
        offsets = by_p.get(p, [])
        assert offsets == list(range(len(offsets))), (
            f"partition {p}: offsets not contiguous from 0: {_diff(offsets)}"
        )


def assert_per_key_order(consumed: Sequence[Rec]) -> None:
    """Every key lives in one partition, and its messages appear in produce (sequence) order."""
    partitions_of_key: dict[bytes | None, set[int]] = defaultdict(set)
    seqs_of_key: dict[bytes | None, list[int]] = defaultdict(list)
    for r in sorted(consumed, key=lambda r: (r.partition, r.offset)):
        partitions_of_key[r.key].add(r.partition)
        seqs_of_key[r.key].append(seq_of(r))
    split = {k: v for k, v in partitions_of_key.items() if len(v) > 1}
    assert not split, f"keys spread over several partitions: {list(split.items())[:3]}"
    for key, seqs in seqs_of_key.items():
        assert seqs == sorted(seqs), f"key {key!r} out of order: {_diff(seqs)}"


def _diff(seq: Sequence[int]) -> str:
    for i, (a, b) in enumerate(itertools.pairwise(seq)):
        if b <= a:
            return f"at index {i + 1}: {a} then {b} (len {len(seq)})"
    return f"len {len(seq)}, first {list(seq[:5])}"


# ------------------------------------------------------------------------------------- data dir


def partition_dir(data_dir: Path, topic: str, partition: int) -> Path:
    """The directory holding a partition's segments (Kafka layout: ``<topic>-<partition>``), found anywhere
    under the data dir so the test does not depend on nesting."""
    name = f"{topic}-{partition}"
    hits = [p for p in data_dir.rglob(name) if p.is_dir()]
    if not hits:
        hits = [
            p
            for p in data_dir.rglob("*")
            if p.is_dir() and topic in p.as_posix() and p.name == str(partition)
        ]
    assert len(hits) == 1, (
        f"expected one directory for {name} under {data_dir}, found {hits}: {_tree(data_dir)}"
    )
    return hits[0]


def newest_segment(pdir: Path) -> Path:
    logs = sorted(pdir.glob("*.log"))
    assert logs, f"no *.log segment in {pdir}: {sorted(p.name for p in pdir.iterdir())}"
    return logs[-1]  # 20-digit zero-padded base offsets sort lexically


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))[:50]


# ---------------------------------------------------------------------------------- raw protocol


def encode_request(
    api_key: int, api_version: int, correlation_id: int, body: bytes, client_id: str = "raw"
) -> bytes:
    """A non-flexible request (header v1) with its size prefix."""
    cid = client_id.encode()
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(cid)) + cid
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_response(sock: socket.socket) -> tuple[int, bytes]:
    """(correlation_id, body) of one response with a v0 header."""
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    assert 4 <= size <= 200 * 1024 * 1024, f"response size {size}"
    payload = recv_exact(sock, size)
    return struct.unpack(">i", payload[:4])[0], payload[4:]


def api_versions_v0(sock: socket.socket, correlation_id: int = 1) -> dict[int, tuple[int, int]]:
    """ApiVersions v0 round trip on a raw socket: {api_key: (min, max)}."""
    sock.sendall(encode_request(18, 0, correlation_id, b""))
    cid, body = recv_response(sock)
    assert cid == correlation_id
    error_code, n = struct.unpack(">hi", body[:6])
    assert error_code == 0, f"ApiVersions error {error_code}"
    out = {}
    for i in range(n):
        key, lo, hi = struct.unpack(">hhh", body[6 + 6 * i : 12 + 6 * i])
        out[key] = (lo, hi)
    return out


def fetch_v4(
    sock: socket.socket,
    topic: str,
    partition: int,
    offset: int,
    *,
    partition_max_bytes: int,
    max_bytes: int,
    correlation_id: int = 7,
) -> tuple[int, int, bytes]:
    """Fetch v4 for one partition, read_uncommitted, no wait: (error_code, high_watermark, records)."""
    t = topic.encode()
    body = struct.pack(">iiiib", -1, 0, 1, max_bytes, 0)  # replica, max_wait, min_bytes, max_bytes, isolation
    body += struct.pack(">ih", 1, len(t)) + t
    body += struct.pack(">iiqi", 1, partition, offset, partition_max_bytes)
    sock.sendall(encode_request(1, 4, correlation_id, body))
    cid, resp = recv_response(sock)
    assert cid == correlation_id
    pos = 4  # throttle_time_ms
    (ntopics,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    assert ntopics == 1, f"fetch response has {ntopics} topics"
    (tlen,) = struct.unpack_from(">h", resp, pos)
    pos += 2 + tlen
    (nparts,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    assert nparts == 1, f"fetch response has {nparts} partitions"
    pidx, err, hw, _lso = struct.unpack_from(">ihqq", resp, pos)
    pos += 4 + 2 + 8 + 8
    assert pidx == partition
    (naborted,) = struct.unpack_from(">i", resp, pos)
    pos += 4 + max(naborted, 0) * 16
    (rlen,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    records = resp[pos : pos + max(rlen, 0)]
    assert len(records) == max(rlen, 0), "records field runs past the response"
    return err, hw, records


def iter_batch_headers(records: bytes) -> Iterator[tuple[int, int, int]]:
    """(base_offset, records_count, batch_size) per complete v2 batch; a partial trailing batch is skipped
    (brokers may legitimately cut one at the fetch limit)."""
    pos = 0
    while pos + 61 <= len(records):
        base_offset, batch_len = struct.unpack_from(">qi", records, pos)
        size = 12 + batch_len
        if pos + size > len(records):
            return
        magic = records[pos + 16]
        assert magic == 2, f"magic {magic} at {pos}"
        (count,) = struct.unpack_from(">i", records, pos + 57)
        yield base_offset, count, size
        pos += size


# -------------------------------------------------------------------------------- admin read-back


def confluent_topic_configs(bootstrap: str, topic: str) -> dict[str, tuple[str | None, str]]:
    """DescribeConfigs through confluent-kafka: {name: (value, source name)} for every config."""
    from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType

    admin = confluent_admin(bootstrap)  # must outlive its futures: a destroyed handle fails them
    (future,) = admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, topic)], request_timeout=20
    ).values()
    entries = future.result(timeout=30)
    return {name: (e.value, ConfigSource(e.source).name) for name, e in entries.items()}


def confluent_incremental_alter(bootstrap: str, topic: str, ops: dict[str, str | None]) -> None:
    """IncrementalAlterConfigs: value -> SET, None -> DELETE."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    entries = [
        ConfigEntry(
            name,
            value,
            incremental_operation=AlterConfigOpType.DELETE if value is None else AlterConfigOpType.SET,
        )
        for name, value in ops.items()
    ]
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    admin = confluent_admin(bootstrap)
    (future,) = admin.incremental_alter_configs([resource], request_timeout=20).values()
    future.result(timeout=30)


def confluent_describe_topics(bootstrap: str, topics: Sequence[str]) -> dict[str, Any]:
    """describe_topics (Metadata with topic ids): {name: TopicDescription}."""
    from confluent_kafka import TopicCollection

    admin = confluent_admin(bootstrap)
    futures = admin.describe_topics(TopicCollection(list(topics)), request_timeout=20)
    return {name: f.result(timeout=30) for name, f in futures.items()}


def confluent_list_topics(bootstrap: str) -> dict[str, int]:
    """{topic: partition count} from a Metadata request for all topics."""
    md = confluent_admin(bootstrap).list_topics(timeout=20)
    return {name: len(t.partitions) for name, t in md.topics.items() if t.error is None}
