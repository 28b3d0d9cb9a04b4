"""Broker handlers driven in-process through the real codec: request bytes in, response bytes out.

These complement the end-to-end tests (real clients over TCP) by reaching error paths that clients
rarely exercise, quickly and deterministically.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from riel.broker.context import BrokerContext
from riel.broker.router import Router, served_apis
from riel.clock import wall_clock_ms
from riel.config import TOPIC_CONFIG_DEFAULTS, BrokerConfig, FlushPolicy
from riel.coordinator.coordinator import GroupCoordinator
from riel.coordinator.driver import CoordinatorDriver
from riel.errors import ErrorCode, ProtocolError
from riel.protocol.apis import APIS
from riel.protocol.headers import decode_request, decode_response, encode_request, encode_response
from riel.records.batch import Record, decode_batch, encode_batch
from riel.storage.log_manager import LogManager
from riel.storage.offsets_store import OffsetsStore
from riel.storage.partition_log import FileSlice
from riel.storage.producer_ids import ProducerIdAllocator


class Harness:
    def __init__(self, data_dir: Path) -> None:
        self.config = BrokerConfig(data_dir=data_dir, flush=FlushPolicy.parse("os"), port=9999)
        self.log = LogManager(data_dir, self.config.flush, dict(TOPIC_CONFIG_DEFAULTS))
        self.log.open()
        self.offsets = OffsetsStore(data_dir, self.config.flush)
        self.offsets.open()
        coordinator = GroupCoordinator(
            self.config.groups, self.offsets, self._high_watermark, wall_clock_ms()
        )
        self.ctx = BrokerContext(
            self.config,
            self.log,
            ProducerIdAllocator(data_dir / "producer-ids"),
            CoordinatorDriver(coordinator, wall_clock_ms),
        )
        self.router = Router(self.ctx)
        self._correlation = 0

    def _high_watermark(self, topic: str, partition: int) -> int | None:
        plog = self.log.partition(topic, partition)
        return None if plog is None else plog.high_watermark

    def call(self, api_key: int, version: int, body: dict[str, Any]) -> dict[str, Any] | None:
        api = APIS[api_key]
        self._correlation += 1
        frame = encode_request(api, version, self._correlation, "test", body)
        request = decode_request(frame[4:])
        response = asyncio.run(self.router.handle(request))
        if response is None:
            return None
        chunks = encode_response(request, response)
        raw = b"".join(c.read_bytes() if isinstance(c, FileSlice) else bytes(c) for c in chunks)  # type: ignore[union-attr]
        for c in chunks:
            if isinstance(c, FileSlice):
                c.close()
        assert int.from_bytes(raw[:4], "big") == len(raw) - 4
        correlation, decoded = decode_response(api, version, raw[4:])
        assert correlation == self._correlation
        return decoded

    def create_topic(
        self, name: str, partitions: int = 1, configs: dict[str, str] | None = None
    ) -> dict[str, Any]:
        resp = self.call(
            19,
            5,
            {
                "topics": [
                    {
                        "name": name,
                        "num_partitions": partitions,
                        "replication_factor": 1,
                        "assignments": [],
                        "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()],
                    }
                ],
                "timeout_ms": 1000,
                "validate_only": False,
            },
        )
        assert resp is not None
        topic: dict[str, Any] = resp["topics"][0]
        return topic

    def produce(
        self, topic: str, partition: int, records: bytes, acks: int = -1, version: int = 9
    ) -> dict[str, Any] | None:
        resp = self.call(
            0,
            version,
            {
                "transactional_id": None,
                "acks": acks,
                "timeout_ms": 1000,
                "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": records}]}],
            },
        )
        return None if resp is None else resp["responses"][0]["partition_responses"][0]

    def fetch(
        self,
        topic: str,
        partition: int,
        offset: int,
        max_bytes: int = 1 << 20,
        partition_max_bytes: int = 1 << 20,
        version: int = 12,
    ) -> dict[str, Any]:
        resp = self.call(
            1,
            version,
            {
                "replica_id": -1,
                "max_wait_ms": 0,
                "min_bytes": 1,
                "max_bytes": max_bytes,
                "isolation_level": 0,
                "session_id": 0,
                "session_epoch": -1,
                "topics": [
                    {
                        "topic": topic,
                        "partitions": [
                            {
                                "partition": partition,
                                "fetch_offset": offset,
                                "partition_max_bytes": partition_max_bytes,
                            }
                        ],
                    }
                ],
            },
        )
        assert resp is not None
        part: dict[str, Any] = resp["responses"][0]["partitions"][0]
        return part


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.offsets.close()
    h.log.close()


def batch(n: int, start: int = 0, ts: int = 1_700_000_000_000, **kw: Any) -> bytes:
    return encode_batch(
        [
            Record(
                offset=i,
                timestamp=ts + i,
                key=f"k{start + i}".encode(),
                value=f"v{start + i}".encode(),
                headers=[("h", b"1")],
            )
            for i in range(n)
        ],
        **kw,
    )


def test_api_versions_advertises_exactly_the_served_apis(broker: Harness) -> None:
    resp = broker.call(18, 3, {"client_software_name": "t", "client_software_version": "1"})
    assert resp is not None
    assert resp["error_code"] == 0
    advertised = {k["api_key"]: (k["min_version"], k["max_version"]) for k in resp["api_keys"]}
    assert advertised == {a.key: (a.min_version, a.max_version) for a in served_apis()}
    # librdkafka < 2.11 probes these exact versions to switch features on.
    assert advertised[0][0] == 0 and advertised[1][0] <= 4 and advertised[1][1] >= 10
    assert advertised[2][0] <= 1 and advertised[22][0] == 0


def test_api_versions_unknown_version_gets_error_35_in_v0_layout(broker: Harness) -> None:
    frame = encode_request(
        APIS[18], 3, 42, "t", {"client_software_name": "t", "client_software_version": "1"}
    )
    raw = bytearray(frame)
    raw[6:8] = (99).to_bytes(2, "big")  # ApiVersions v99
    request = decode_request(bytes(raw[4:]))
    assert not request.version_supported
    body = asyncio.run(broker.router.handle(request))
    assert body is not None
    out = b"".join(bytes(c) for c in encode_response(request, body))  # type: ignore[arg-type]
    correlation, decoded = decode_response(APIS[18], 0, out[4:])
    assert correlation == 42
    assert decoded["error_code"] == ErrorCode.UNSUPPORTED_VERSION
    assert any(k["api_key"] == 18 for k in decoded["api_keys"])


def test_produce_then_fetch_returns_stored_batches_with_assigned_offsets(broker: Harness) -> None:
    broker.create_topic("t", 2)
    first = broker.produce("t", 1, batch(3))
    second = broker.produce("t", 1, batch(2, start=3))
    assert first is not None and second is not None
    assert (first["error_code"], first["base_offset"]) == (0, 0)
    assert (second["error_code"], second["base_offset"]) == (0, 3)
    part = broker.fetch("t", 1, 0)
    assert part["error_code"] == 0 and part["high_watermark"] == 5 and part["last_stable_offset"] == 5

    records = decode_batch(bytes(part["records"]))
    assert [(r.offset, r.key, r.value) for r in records] == [
        (i, f"k{i}".encode(), f"v{i}".encode()) for i in range(5)
    ]
    # Fetching from the middle of a batch returns that whole batch (the client skips what it did not ask for).
    assert decode_batch(bytes(broker.fetch("t", 1, 4)["records"]))[0].offset == 3


def test_fetch_limits_return_at_least_one_batch(broker: Harness) -> None:
    broker.create_topic("t")
    for i in range(5):
        broker.produce("t", 0, batch(10, start=10 * i))
    one = broker.fetch("t", 0, 0, max_bytes=1, partition_max_bytes=1)

    assert [r.offset for r in decode_batch(bytes(one["records"]))] == list(range(10))
    everything = broker.fetch("t", 0, 0)
    assert len(decode_batch(bytes(everything["records"]))) == 50


def test_fetch_errors(broker: Harness) -> None:
    broker.create_topic("t")
    broker.produce("t", 0, batch(2))
    assert broker.fetch("t", 0, 3)["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE
    assert broker.fetch("t", 0, 2)["records"] == b""  # at the end: empty, never null
    assert broker.fetch("nope", 0, 0)["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def topic_id_of(broker: Harness, name: str) -> uuid.UUID:
    resp = broker.call(
        3,
        12,
        {
            "topics": [{"topic_id": uuid.UUID(int=0), "name": name}],
            "allow_auto_topic_creation": False,
            "include_topic_authorized_operations": False,
        },
    )
    assert resp is not None and resp["topics"][0]["error_code"] == 0
    topic_id: uuid.UUID = resp["topics"][0]["topic_id"]
    assert topic_id.int != 0
    return topic_id


def fetch_by_id(broker: Harness, topic_id: uuid.UUID, version: int) -> dict[str, Any]:
    resp = broker.call(
        1,
        version,
        {
            "max_wait_ms": 0,
            "min_bytes": 1,
            "max_bytes": 1 << 20,
            "topics": [
                {
                    "topic_id": topic_id,
                    "partitions": [
                        {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20},
                        {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20},
                    ],
                }
            ],
            "forgotten_topics_data": [],
        },
    )
    assert resp is not None and resp["error_code"] == 0 and resp["session_id"] == 0
    (topic,) = resp["responses"]
    assert topic["topic_id"] == topic_id
    assert len(topic["partitions"]) == 1  # asked twice, answered once
    part: dict[str, Any] = topic["partitions"][0]
    return part


@pytest.mark.parametrize("version", [13, 14, 15, 16])
def test_fetch_v13_plus_names_topics_by_id(broker: Harness, version: int) -> None:
    """KIP-516: from v13 a fetch names its topic by ID. The right ID reads the topic; an unknown ID,
    and the ID of a topic since deleted and created again under the same name, get UNKNOWN_TOPIC_ID
    (so a client with stale metadata cannot read the new topic's data as the old one's)."""
    broker.create_topic("t")
    broker.produce("t", 0, batch(3))
    created = topic_id_of(broker, "t")
    part = fetch_by_id(broker, created, version)
    assert part["error_code"] == 0 and part["high_watermark"] == 3
    assert [r.value for r in decode_batch(bytes(part["records"]))] == [b"v0", b"v1", b"v2"]

    assert fetch_by_id(broker, uuid.uuid4(), version)["error_code"] == ErrorCode.UNKNOWN_TOPIC_ID
    assert fetch_by_id(broker, uuid.UUID(int=0), version)["error_code"] == ErrorCode.UNKNOWN_TOPIC_ID

    deleted = broker.call(20, 4, {"topic_names": ["t"], "timeout_ms": 1000})
    assert deleted is not None and deleted["responses"][0]["error_code"] == 0
    broker.create_topic("t")
    again = topic_id_of(broker, "t")
    assert again != created
    assert fetch_by_id(broker, created, version)["error_code"] == ErrorCode.UNKNOWN_TOPIC_ID
    assert fetch_by_id(broker, again, version)["high_watermark"] == 0


def test_produce_errors(broker: Harness) -> None:
    broker.create_topic("t")
    assert broker.produce("missing", 0, batch(1))["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION  # type: ignore[index]
    assert broker.produce("t", 0, batch(1), acks=2)["error_code"] == ErrorCode.INVALID_REQUIRED_ACKS  # type: ignore[index]
    corrupt = bytearray(batch(2))
    corrupt[-1] ^= 0xFF
    assert broker.produce("t", 0, bytes(corrupt))["error_code"] == ErrorCode.CORRUPT_MESSAGE  # type: ignore[index]
    assert broker.produce("t", 0, batch(1), acks=0) is None  # acks=0 gets no response at all
    assert broker.fetch("t", 0, 0)["high_watermark"] == 1


def test_idempotent_duplicate_is_acknowledged_with_original_offset(broker: Harness) -> None:
    broker.create_topic("t")
    pid_resp = broker.call(
        22,
        4,
        {"transactional_id": None, "transaction_timeout_ms": 60000, "producer_id": -1, "producer_epoch": -1},
    )
    assert pid_resp is not None and pid_resp["error_code"] == 0
    pid = pid_resp["producer_id"]
    b0 = batch(3, producer_id=pid, producer_epoch=0, base_sequence=0)
    assert broker.produce("t", 0, b0)["base_offset"] == 0  # type: ignore[index]
    again = broker.produce("t", 0, b0)
    assert again is not None and (again["error_code"], again["base_offset"]) == (0, 0)
    gap = broker.produce("t", 0, batch(1, producer_id=pid, producer_epoch=0, base_sequence=7))
    assert gap is not None and gap["error_code"] == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert broker.fetch("t", 0, 0)["high_watermark"] == 3
    # Producer ids are never handed out twice.
    other = broker.call(
        22,
        4,
        {"transactional_id": None, "transaction_timeout_ms": 60000, "producer_id": -1, "producer_epoch": -1},
    )
    assert other is not None and other["producer_id"] != pid


def test_list_offsets_earliest_latest_time_and_max(broker: Harness) -> None:
    broker.create_topic("t")
    broker.produce("t", 0, batch(3, ts=1000))
    broker.produce("t", 0, batch(3, ts=5000))

    def offsets(ts: int) -> tuple[int, int]:
        resp = broker.call(
            2,
            7,
            {
                "replica_id": -1,
                "isolation_level": 0,
                "topics": [{"name": "t", "partitions": [{"partition_index": 0, "timestamp": ts}]}],
            },
        )
        assert resp is not None
        p = resp["topics"][0]["partitions"][0]
        assert p["error_code"] == 0
        return p["offset"], p["timestamp"]

    assert offsets(-2)[0] == 0
    assert offsets(-1)[0] == 6
    assert offsets(3000) == (3, 5000)
    assert offsets(-3) == (5, 5002)
    assert offsets(10**12)[0] == -1


def test_delete_records_moves_log_start(broker: Harness) -> None:
    broker.create_topic("t")
    broker.produce("t", 0, batch(5))
    resp = broker.call(
        21,
        2,
        {"topics": [{"name": "t", "partitions": [{"partition_index": 0, "offset": 3}]}], "timeout_ms": 1000},
    )
    assert resp is not None
    assert resp["topics"][0]["partitions"][0]["low_watermark"] == 3
    assert broker.fetch("t", 0, 0)["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE
    assert broker.fetch("t", 0, 3)["log_start_offset"] == 3


def test_metadata_auto_creates_and_reports_topic_ids(broker: Harness) -> None:
    resp = broker.call(
        3,
        12,
        {
            "topics": [{"topic_id": uuid.UUID(int=0), "name": "auto"}],
            "allow_auto_topic_creation": True,
            "include_topic_authorized_operations": False,
        },
    )
    assert resp is not None
    topic = resp["topics"][0]
    assert topic["error_code"] == 0 and topic["topic_id"].int != 0 and len(topic["partitions"]) == 1
    assert resp["brokers"] == [{"node_id": 0, "host": "127.0.0.1", "port": 9999, "rack": None}]
    none = broker.call(
        3,
        12,
        {
            "topics": [{"topic_id": uuid.UUID(int=0), "name": "nope"}],
            "allow_auto_topic_creation": False,
            "include_topic_authorized_operations": False,
        },
    )
    assert none is not None and none["topics"][0]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    by_id = broker.call(
        3,
        12,
        {
            "topics": [{"topic_id": topic["topic_id"], "name": None}],
            "allow_auto_topic_creation": False,
            "include_topic_authorized_operations": False,
        },
    )
    assert by_id is not None and by_id["topics"][0]["name"] == "auto"


def test_topic_admin_errors(broker: Harness) -> None:
    assert broker.create_topic("t")["error_code"] == 0
    assert broker.create_topic("t")["error_code"] == ErrorCode.TOPIC_ALREADY_EXISTS
    assert broker.create_topic("bad name!")["error_code"] == ErrorCode.INVALID_TOPIC_EXCEPTION
    assert broker.create_topic("c", configs={"no.such": "1"})["error_code"] == ErrorCode.INVALID_CONFIG
    assert (
        broker.create_topic("c", configs={"retention.ms": "soon"})["error_code"] == ErrorCode.INVALID_CONFIG
    )
    resp = broker.call(
        37,
        2,
        {
            "topics": [{"name": "t", "count": 1, "assignments": None}],
            "timeout_ms": 1000,
            "validate_only": False,
        },
    )
    assert resp is not None and resp["results"][0]["error_code"] == ErrorCode.INVALID_PARTITIONS
    resp = broker.call(
        37,
        2,
        {
            "topics": [{"name": "t", "count": 4, "assignments": None}],
            "timeout_ms": 1000,
            "validate_only": False,
        },
    )
    assert resp is not None and resp["results"][0]["error_code"] == 0
    assert broker.log.topics()["t"].partitions == 4
    resp = broker.call(20, 4, {"topic_names": ["t", "nope"], "timeout_ms": 1000})
    assert resp is not None
    assert [r["error_code"] for r in resp["responses"]] == [0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]
    assert "t" not in broker.log.topics()


def test_configs_describe_alter_incremental(broker: Harness) -> None:
    broker.create_topic("t", configs={"retention.ms": "1000"})

    def describe() -> dict[str, tuple[str, int]]:
        resp = broker.call(
            32,
            4,
            {
                "resources": [{"resource_type": 2, "resource_name": "t", "configuration_keys": None}],
                "include_synonyms": False,
                "include_documentation": False,
            },
        )
        assert resp is not None and resp["results"][0]["error_code"] == 0
        return {c["name"]: (c["value"], c["config_source"]) for c in resp["results"][0]["configs"]}

    assert describe()["retention.ms"] == ("1000", 1)
    assert describe()["segment.bytes"] == (TOPIC_CONFIG_DEFAULTS["segment.bytes"], 5)
    resp = broker.call(
        44,
        1,
        {
            "resources": [
                {
                    "resource_type": 2,
                    "resource_name": "t",
                    "configs": [
                        {"name": "cleanup.policy", "config_operation": 0, "value": "compact"},
                        {"name": "retention.ms", "config_operation": 1, "value": None},
                    ],
                }
            ],
            "validate_only": False,
        },
    )
    assert resp is not None and resp["responses"][0]["error_code"] == 0
    current = describe()
    assert current["cleanup.policy"] == ("compact", 1)
    assert current["retention.ms"] == (TOPIC_CONFIG_DEFAULTS["retention.ms"], 5)
    resp = broker.call(
        33,
        2,
        {
            "resources": [
                {
                    "resource_type": 2,
                    "resource_name": "t",
                    "configs": [{"name": "max.message.bytes", "value": "2000"}],
                }
            ],
            "validate_only": False,
        },
    )
    assert resp is not None and resp["responses"][0]["error_code"] == 0
    current = describe()
    assert current["max.message.bytes"] == ("2000", 1) and current["cleanup.policy"][1] == 5
    bad = broker.call(
        33,
        2,
        {
            "resources": [
                {
                    "resource_type": 2,
                    "resource_name": "t",
                    "configs": [{"name": "max.message.bytes", "value": "x"}],
                }
            ],
            "validate_only": False,
        },
    )
    assert bad is not None and bad["responses"][0]["error_code"] == ErrorCode.INVALID_CONFIG


def test_unknown_api_closes_connection(broker: Harness) -> None:
    frame = bytearray(encode_request(APIS[18], 0, 1, "t", {}))
    frame[4:6] = (9999).to_bytes(2, "big")
    with pytest.raises(ProtocolError):
        decode_request(bytes(frame[4:]))


def test_flush_always_acknowledges_only_durable_data(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.config.flush = FlushPolicy.parse("always")
    try:
        h.create_topic("t")
        plog = h.log.partition("t", 0)
        assert plog is not None
        for i in range(3):
            resp = h.produce("t", 0, batch(4, start=4 * i))
            assert resp is not None and resp["error_code"] == 0
            # The ack came back only after the group-commit fsync covered the batch.
            assert plog.recovery_point == plog.high_watermark == 4 * (i + 1)
    finally:
        h.log.close()


def test_concurrent_produces_share_fsyncs_and_all_become_durable(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.config.flush = FlushPolicy.parse("always")
    h.create_topic("t")
    plog = h.log.partition("t", 0)
    assert plog is not None
    calls = 0
    original = plog.prepare_flush

    def counting_prepare() -> Any:
        nonlocal calls
        calls += 1
        return original()

    plog.prepare_flush = counting_prepare  # type: ignore[method-assign]

    async def many() -> list[Any]:
        requests = []
        for i in range(20):
            frame = encode_request(
                APIS[0],
                9,
                i,
                "t",
                {
                    "transactional_id": None,
                    "acks": -1,
                    "timeout_ms": 1000,
                    "topic_data": [
                        {"name": "t", "partition_data": [{"index": 0, "records": batch(2, start=2 * i)}]}
                    ],
                },
            )
            requests.append(h.router.handle(decode_request(frame[4:])))
        return list(await asyncio.gather(*requests))

    try:
        results = asyncio.run(many())
        offsets = sorted(r["responses"][0]["partition_responses"][0]["base_offset"] for r in results)
        assert offsets == list(range(0, 40, 2))
        assert plog.recovery_point == 40
        assert calls < 20  # requests that arrived during an fsync were covered by a shared one
    finally:
        h.log.close()


def test_under_always_consumers_see_only_fsynced_records(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.config.flush = FlushPolicy.parse("always")
    h.log.close()
    h.log = LogManager(tmp_path, h.config.flush, dict(TOPIC_CONFIG_DEFAULTS))
    h.log.open()
    h.ctx.log = h.log
    try:
        h.create_topic("t")
        assert h.produce("t", 0, batch(3))["base_offset"] == 0  # type: ignore[index]
        plog = h.log.partition("t", 0)
        assert plog is not None
        plog.append(bytearray(batch(2, start=3)), 0, defer_flush=True)  # appended, not yet fsync'ed
        assert plog.log_end_offset == 5 and plog.high_watermark == 3
        part = h.fetch("t", 0, 0)
        assert part["high_watermark"] == 3
        assert [r.offset for r in decode_batch(bytes(part["records"]))] == [0, 1, 2]
        assert h.fetch("t", 0, 3)["records"] == b""  # visible end: empty, not an error
        plog.flush()
        assert [r.offset for r in decode_batch(bytes(h.fetch("t", 0, 3)["records"]))] == [3, 4]
    finally:
        h.log.close()


def test_partition_cap_and_duplicate_fetch_partitions(broker: Harness) -> None:
    broker.config.max_partitions_per_topic = 8
    assert broker.create_topic("huge", 9)["error_code"] == ErrorCode.INVALID_PARTITIONS
    assert broker.create_topic("t", 2)["error_code"] == 0
    resp = broker.call(
        37,
        2,
        {
            "topics": [{"name": "t", "count": 9, "assignments": None}],
            "timeout_ms": 1000,
            "validate_only": False,
        },
    )
    assert resp is not None and resp["results"][0]["error_code"] == ErrorCode.INVALID_PARTITIONS
    broker.produce("t", 0, batch(2))
    resp = broker.call(
        1,
        12,
        {
            "replica_id": -1,
            "max_wait_ms": 0,
            "min_bytes": 1,
            "max_bytes": 1 << 20,
            "isolation_level": 0,
            "session_id": 0,
            "session_epoch": -1,
            "topics": [
                {
                    "topic": "t",
                    "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}] * 3,
                }
            ],
        },
    )
    assert resp is not None
    assert [p["partition_index"] for p in resp["responses"][0]["partitions"]] == [0]
