"""Capture golden frames from kafka-python 3.0.12's client-side encoder.

Run ``python tests/protocol/golden/capture.py`` to (re)write
``<api>_v<version>_<nnn>.<request|response>.bin``: whole wire frames (size prefix and header included)
as kafka-python would send or read them. The files are checked in so that the test does not depend on
kafka-python staying the same; ``test_parity`` decodes each with Riel's codec, re-encodes it, and
expects the identical bytes.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import kafka.protocol.admin
import kafka.protocol.consumer
import kafka.protocol.metadata
import kafka.protocol.producer
from kafka.record.memory_records import MemoryRecordsBuilder

HERE = Path(__file__).parent
PACKAGES = (kafka.protocol.producer, kafka.protocol.consumer, kafka.protocol.metadata, kafka.protocol.admin)


def message_class(name: str) -> Any:
    for package in PACKAGES:
        if hasattr(package, name):
            return getattr(package, name)
    raise LookupError(name)


def build(cls: Any, values: dict[str, Any]) -> Any:
    """A kafka-python message from a plain dict, nested structs included."""
    converted = {}
    for name, value in values.items():
        field = cls._struct.fields[name]
        if field.is_struct_array() and value is not None:
            value = [build(field.data_class, item) for item in value]
        elif field.is_struct() and value is not None:
            value = build(field.data_class, value)
        converted[name] = value
    return cls(**converted)


def record_batch(*values: bytes) -> bytes:
    builder = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
    for i, value in enumerate(values):
        builder.append(timestamp=1_700_000_000_000 + i, key=b"key-%d" % i, value=value, headers=[])
    builder.close()
    return bytes(builder.buffer())


BATCH = record_batch(b"hello", b"world")
TOPIC_ID = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")

# (API name, version, request or response, body). Bodies are what kafka-python's clients send and read.
FRAMES: list[tuple[str, int, str, dict[str, Any]]] = [
    ("ApiVersions", 0, "request", {}),
    ("ApiVersions", 3, "request", {"client_software_name": "kafka-python",
                                   "client_software_version": "3.0.12"}),
    ("ApiVersions", 3, "response", {
        "error_code": 0, "throttle_time_ms": 0,
        "api_keys": [{"api_key": 0, "min_version": 0, "max_version": 9},
                     {"api_key": 18, "min_version": 0, "max_version": 3}],
        "finalized_features_epoch": 3,
    }),
    ("Metadata", 0, "request", {"topics": [{"name": "orders"}]}),
    ("Metadata", 4, "request", {"topics": None, "allow_auto_topic_creation": True}),
    ("Metadata", 9, "request", {"topics": [{"name": "orders"}, {"name": "payments"}],
                                "allow_auto_topic_creation": False,
                                "include_topic_authorized_operations": True}),
    ("Metadata", 12, "request", {"topics": [{"topic_id": None, "name": "orders"}],
                                 "allow_auto_topic_creation": True}),
    ("Metadata", 12, "response", {
        "throttle_time_ms": 0,
        "brokers": [{"node_id": 1, "host": "localhost", "port": 9092, "rack": None}],
        "cluster_id": "riel-cluster", "controller_id": 1,
        "topics": [{"error_code": 0, "name": "orders", "topic_id": TOPIC_ID, "is_internal": False,
                    "partitions": [{"error_code": 0, "partition_index": 0, "leader_id": 1, "leader_epoch": 0,
                                    "replica_nodes": [1], "isr_nodes": [1], "offline_replicas": []}]}],
    }),
    ("Produce", 0, "request", {"acks": 1, "timeout_ms": 30000,
                               "topic_data": [{"name": "orders",
                                               "partition_data": [{"index": 0, "records": BATCH}]}]}),
    ("Produce", 3, "request", {"transactional_id": None, "acks": -1, "timeout_ms": 30000,
                               "topic_data": [{"name": "orders",
                                               "partition_data": [{"index": 0, "records": BATCH},
                                                                  {"index": 2, "records": BATCH}]}]}),
    ("Produce", 9, "request", {"transactional_id": "txn-1", "acks": -1, "timeout_ms": 30000,
                               "topic_data": [{"name": "orders",
                                               "partition_data": [{"index": 1, "records": BATCH}]}]}),
    ("Produce", 9, "response", {
        "responses": [{"name": "orders", "partition_responses": [
            {"index": 1, "error_code": 0, "base_offset": 42, "log_append_time_ms": -1,
             "log_start_offset": 0, "record_errors": [], "error_message": None}]}],
        "throttle_time_ms": 0,
    }),
    ("Fetch", 4, "request", {"replica_id": -1, "max_wait_ms": 500, "min_bytes": 1, "max_bytes": 52428800,
                             "isolation_level": 1,
                             "topics": [{"topic": "orders", "partitions": [
                                 {"partition": 0, "fetch_offset": 42, "partition_max_bytes": 1048576}]}]}),
    ("Fetch", 11, "request", {"replica_id": -1, "max_wait_ms": 500, "min_bytes": 1, "max_bytes": 52428800,
                              "isolation_level": 0, "session_id": 0, "session_epoch": -1,
                              "topics": [{"topic": "orders", "partitions": [
                                  {"partition": 0, "current_leader_epoch": 0, "fetch_offset": 42,
                                   "log_start_offset": -1, "partition_max_bytes": 1048576}]}],
                              "forgotten_topics_data": [], "rack_id": "rack-a"}),
    ("Fetch", 12, "request", {"max_wait_ms": 500, "min_bytes": 1, "max_bytes": 52428800,
                              "isolation_level": 1, "session_id": 7, "session_epoch": 3,
                              "topics": [{"topic": "orders", "partitions": [
                                  {"partition": 0, "current_leader_epoch": 0, "fetch_offset": 42,
                                   "last_fetched_epoch": 0, "log_start_offset": -1,
                                   "partition_max_bytes": 1048576}]}],
                              "forgotten_topics_data": [{"topic": "payments", "partitions": [1, 2]}],
                              "rack_id": ""}),
    ("Fetch", 12, "response", {
        "throttle_time_ms": 0, "error_code": 0, "session_id": 7,
        "responses": [{"topic": "orders", "partitions": [
            {"partition_index": 0, "error_code": 0, "high_watermark": 44, "last_stable_offset": 44,
             "log_start_offset": 0, "current_leader": {"leader_id": 1, "leader_epoch": 0},
             "aborted_transactions": None, "preferred_read_replica": -1, "records": BATCH}]}],
    }),
    ("ListOffsets", 1, "request", {"replica_id": -1, "topics": [
        {"name": "orders", "partitions": [{"partition_index": 0, "timestamp": -1}]}]}),
    ("ListOffsets", 7, "request", {"replica_id": -1, "isolation_level": 1, "topics": [
        {"name": "orders", "partitions": [{"partition_index": 0, "current_leader_epoch": -1,
                                           "timestamp": -3}]}]}),
    ("InitProducerId", 0, "request", {"transactional_id": None, "transaction_timeout_ms": 60000}),
    ("InitProducerId", 4, "request", {"transactional_id": "txn-1", "transaction_timeout_ms": 60000,
                                      "producer_id": -1, "producer_epoch": -1}),
    ("FindCoordinator", 0, "request", {"key": "group-a"}),
    ("FindCoordinator", 2, "request", {"key": "group-a", "key_type": 0}),
    ("FindCoordinator", 4, "request", {"key_type": 0, "coordinator_keys": ["group-a"]}),
    ("FindCoordinator", 4, "response", {"throttle_time_ms": 0, "coordinators": [
        {"key": "group-a", "node_id": 1, "host": "localhost", "port": 9092, "error_code": 0,
         "error_message": None}]}),
    ("JoinGroup", 0, "request", {"group_id": "group-a", "session_timeout_ms": 10000, "member_id": "",
                                 "protocol_type": "consumer",
                                 "protocols": [{"name": "range", "metadata": b"\x00\x00\x00\x00"}]}),
    ("JoinGroup", 7, "request", {"group_id": "group-a", "session_timeout_ms": 10000,
                                 "rebalance_timeout_ms": 300000, "member_id": "m-1",
                                 "group_instance_id": None, "protocol_type": "consumer",
                                 "protocols": [{"name": "range", "metadata": b"\x00\x01"},
                                               {"name": "roundrobin", "metadata": b"\x00\x01"}]}),
    ("JoinGroup", 7, "response", {"throttle_time_ms": 0, "error_code": 0, "generation_id": 1,
                                  "protocol_type": "consumer", "protocol_name": "range", "leader": "m-1",
                                  "member_id": "m-1",
                                  "members": [{"member_id": "m-1", "group_instance_id": None,
                                               "metadata": b"\x00\x01"}]}),
    ("SyncGroup", 5, "request", {"group_id": "group-a", "generation_id": 1, "member_id": "m-1",
                                 "group_instance_id": None, "protocol_type": "consumer",
                                 "protocol_name": "range",
                                 "assignments": [{"member_id": "m-1", "assignment": b"\x00\x01\x02"}]}),
    ("Heartbeat", 4, "request", {"group_id": "group-a", "generation_id": 1, "member_id": "m-1",
                                 "group_instance_id": None}),
    ("LeaveGroup", 0, "request", {"group_id": "group-a", "member_id": "m-1"}),
    ("LeaveGroup", 4, "request", {"group_id": "group-a",
                                  "members": [{"member_id": "m-1", "group_instance_id": None}]}),
    ("OffsetCommit", 2, "request", {"group_id": "group-a", "generation_id_or_member_epoch": 1,
                                    "member_id": "m-1", "retention_time_ms": -1,
                                    "topics": [{"name": "orders", "partitions": [
                                        {"partition_index": 0, "committed_offset": 42,
                                         "committed_metadata": ""}]}]}),
    ("OffsetCommit", 8, "request", {"group_id": "group-a", "generation_id_or_member_epoch": 1,
                                    "member_id": "m-1", "group_instance_id": None,
                                    "topics": [{"name": "orders", "partitions": [
                                        {"partition_index": 0, "committed_offset": 42,
                                         "committed_leader_epoch": 0, "committed_metadata": None}]}]}),
    ("OffsetFetch", 1, "request", {"group_id": "group-a",
                                   "topics": [{"name": "orders", "partition_indexes": [0, 1]}]}),
    ("OffsetFetch", 7, "request", {"group_id": "group-a", "topics": None, "require_stable": True}),
    ("OffsetFetch", 8, "request", {"groups": [{"group_id": "group-a", "topics": None}],
                                   "require_stable": True}),
    ("OffsetFetch", 8, "response", {"throttle_time_ms": 0, "groups": [
        {"group_id": "group-a", "error_code": 0, "topics": [{"name": "orders", "partitions": [
            {"partition_index": 0, "committed_offset": 42, "committed_leader_epoch": -1,
             "metadata": "", "error_code": 0}]}]}]}),
    ("ListGroups", 4, "request", {"states_filter": ["Stable"]}),
    ("DescribeGroups", 5, "request", {"groups": ["group-a"], "include_authorized_operations": False}),
    ("DeleteGroups", 2, "request", {"groups_names": ["group-a", "group-b"]}),
    ("OffsetDelete", 0, "request", {"group_id": "group-a", "topics": [
        {"name": "orders", "partitions": [{"partition_index": 0}]}]}),
    ("CreateTopics", 5, "request", {"topics": [{"name": "orders", "num_partitions": 3,
                                                "replication_factor": 1, "assignments": [],
                                                "configs": [{"name": "retention.ms", "value": "60000"}]}],
                                    "timeout_ms": 30000, "validate_only": False}),
    ("DeleteTopics", 4, "request", {"topic_names": ["orders"], "timeout_ms": 30000}),
    ("DescribeConfigs", 4, "request", {"resources": [{"resource_type": 2, "resource_name": "orders",
                                                      "configuration_keys": None}],
                                       "include_synonyms": False, "include_documentation": False}),
    ("AlterConfigs", 2, "request", {"resources": [{"resource_type": 2, "resource_name": "orders",
                                                   "configs": [{"name": "retention.ms", "value": "1000"}]}],
                                    "validate_only": False}),
    ("IncrementalAlterConfigs", 1, "request", {"resources": [{"resource_type": 2, "resource_name": "orders",
                                                              "configs": [{"name": "retention.ms",
                                                                           "config_operation": 0,
                                                                           "value": "1000"}]}],
                                               "validate_only": False}),
    ("CreatePartitions", 2, "request", {"topics": [{"name": "orders", "count": 6, "assignments": None}],
                                        "timeout_ms": 30000, "validate_only": False}),
    ("DeleteRecords", 2, "request", {"topics": [{"name": "orders", "partitions": [
        {"partition_index": 0, "offset": 10}]}], "timeout_ms": 30000}),
]


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def main() -> None:
    counters: dict[tuple[str, int, str], int] = {}
    for old in HERE.glob("*.bin"):
        old.unlink()
    for api, version, kind, body in FRAMES:
        cls = message_class(api + kind.capitalize())
        msg = build(cls, body)
        msg.API_VERSION = version  # before the header: a response header has no version to update
        msg.with_header(correlation_id=1000 + len(counters), client_id="kafka-python")
        frame = bytes(msg.encode(header=True, framed=True))
        n = counters.get((api, version, kind), 0)
        counters[api, version, kind] = n + 1
        (HERE / f"{snake(api)}_v{version}_{n:03d}.{kind}.bin").write_bytes(frame)


if __name__ == "__main__":
    main()
