"""ACLs end to end: a real ``riel serve --authorizer --super-user User:admin`` with a SASL_PLAINTEXT
listener; ACLs created, described and deleted through kafka-python's and confluent-kafka's admin
clients and ``riel acl``; enforced on produce, fetch, group joins and Metadata; kept across a restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import RielServer, free_port

PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
TIMEOUT_S = 20.0


def riel_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "riel", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


class AclServer:
    def __init__(self, server: RielServer, sasl_port: int) -> None:
        self.server = server
        self.bootstrap = f"127.0.0.1:{sasl_port}"
        self.data_dir = server.data_dir


@pytest.fixture(scope="module")
def acls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclServer]:
    base = tmp_path_factory.mktemp("acls")
    data = base / "data"
    for user, password in PASSWORDS.items():
        added = riel_cli(
            "user", "add", user, "--password-stdin", "--data-dir", str(data), stdin=password + "\n"
        )
        assert added.returncode == 0, added.stderr
    port, sasl_port = free_port(), free_port()
    server = RielServer(
        data,
        base / "riel.log",
        port=port,
        extra_args=(
            "--listener", f"PLAINTEXT://127.0.0.1:{port}",
            "--listener", f"SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
            "--authorizer", "--super-user", "User:admin",
        ),
    )  # fmt: skip
    server.start()
    try:
        yield AclServer(server, sasl_port)
    finally:
        server.close()


def topic_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def confluent_conf(acls: AclServer, user: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": acls.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": user,
        "sasl.password": PASSWORDS[user],
        **extra,
    }


def kp_conf(acls: AclServer, user: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": acls.bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": user,
        "sasl_plain_password": PASSWORDS[user],
    }


def confluent_admin(acls: AclServer, user: str = "admin") -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient(confluent_conf(acls, user))


def allow(acls: AclServer, user: str, operation: str, resource: str, name: str, *, prefixed: bool = False,
          deny: bool = False) -> None:  # fmt: skip
    """One ACL, created by the super user through confluent-kafka's admin client."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    binding = AclBinding(
        ResourceType[resource],
        name,
        ResourcePatternType.PREFIXED if prefixed else ResourcePatternType.LITERAL,
        f"User:{user}",
        "*",
        AclOperation[operation],
        AclPermissionType.DENY if deny else AclPermissionType.ALLOW,
    )
    admin = confluent_admin(acls)  # kept referenced until the futures are done
    for future in admin.create_acls([binding]).values():
        future.result(timeout=TIMEOUT_S)


def create_topics(acls: AclServer, *names: str) -> None:
    from confluent_kafka.admin import NewTopic

    admin = confluent_admin(acls)
    for future in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        future.result(timeout=TIMEOUT_S)


def produce_errors(acls: AclServer, user: str, topic: str, n: int = 3) -> list[str | None]:
    """Produce ``n`` messages as ``user`` with confluent-kafka; each delivery's error name (None: ok)."""
    from confluent_kafka import Producer

    producer = Producer(confluent_conf(acls, user, **{"message.timeout.ms": 10_000}))
    results: list[str | None] = []
    for i in range(n):
        producer.produce(
            topic, f"m{i}".encode(), on_delivery=lambda err, _msg: results.append(err.name() if err else None)
        )
    producer.flush(TIMEOUT_S)
    assert len(results) == n
    return results


def visible_topics(acls: AclServer, user: str) -> set[str]:
    return set(confluent_admin(acls, user).list_topics(timeout=TIMEOUT_S).topics)


# -------------------------------------------------------------------------------------------- tests


def test_write_without_read_produces_but_cannot_fetch(acls: AclServer) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.errors import TopicAuthorizationFailedError

    topic = topic_name("writeonly")
    create_topics(acls, topic)
    allow(acls, "alice", "WRITE", "TOPIC", topic)
    # kafka-python 3.x producers are idempotent: InitProducerId needs WRITE on some topic, which alice has
    producer = KafkaProducer(**kp_conf(acls, "alice"))
    try:
        producer.send(topic, b"hello").get(timeout=TIMEOUT_S)
    finally:
        producer.close(timeout=5)
    assert produce_errors(acls, "alice", topic) == [None, None, None]

    consumer = KafkaConsumer(**kp_conf(acls, "alice"), enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek(TopicPartition(topic, 0), 0)
        with pytest.raises(TopicAuthorizationFailedError):
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline:
                assert not consumer.poll(timeout_ms=500), "alice read a topic she may only write"
    finally:
        consumer.close()
    # bob has no ACL at all: his writes are refused per partition
    assert produce_errors(acls, "bob", topic, 1) == ["TOPIC_AUTHORIZATION_FAILED"]


def test_group_acl_blocks_joining(acls: AclServer) -> None:
    from confluent_kafka import Consumer, KafkaError

    topic = topic_name("grouped")
    create_topics(acls, topic)
    assert produce_errors(acls, "admin", topic, 2) == [None, None]
    allowed, blocked = topic_name("allowed"), topic_name("blocked")
    allow(acls, "alice", "READ", "TOPIC", topic)
    allow(acls, "alice", "READ", "GROUP", allowed)

    def consume(group: str) -> tuple[int, str | None]:
        consumer = Consumer(
            confluent_conf(acls, "alice", **{"group.id": group, "auto.offset.reset": "earliest"})
        )
        got, error = 0, None
        try:
            consumer.subscribe([topic])
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline and got < 2 and error is None:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                        error = "GROUP_AUTHORIZATION_FAILED"
                    continue
                got += 1
        finally:
            consumer.close()
        return got, error

    assert consume(allowed) == (2, None)
    assert consume(blocked) == (0, "GROUP_AUTHORIZATION_FAILED")


def test_prefixed_acl_covers_matching_topics_only_and_metadata_hides_the_rest(acls: AclServer) -> None:
    prefix = topic_name("pfx") + "-"
    inside, outside = prefix + "a", topic_name("other")
    create_topics(acls, inside, outside)
    allow(acls, "bob", "WRITE", "TOPIC", prefix, prefixed=True)
    assert produce_errors(acls, "bob", inside, 1) == [None]
    assert produce_errors(acls, "bob", outside, 1) == ["TOPIC_AUTHORIZATION_FAILED"]
    seen = visible_topics(acls, "bob")
    assert inside in seen and outside not in seen
    assert {inside, outside} <= visible_topics(acls, "admin")  # the super user sees everything


def test_deny_beats_allow(acls: AclServer) -> None:
    topic = topic_name("denied")
    create_topics(acls, topic)
    allow(acls, "alice", "ALL", "TOPIC", topic)
    assert produce_errors(acls, "alice", topic, 1) == [None]
    allow(acls, "alice", "WRITE", "TOPIC", topic, deny=True)
    assert produce_errors(acls, "alice", topic, 1) == ["TOPIC_AUTHORIZATION_FAILED"]
    assert topic in visible_topics(acls, "alice")  # DESCRIBE is still allowed by ALL


def test_kafka_python_admin_creates_describes_and_deletes(acls: AclServer) -> None:
    from kafka.admin import (
        ACL,
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        KafkaAdminClient,
        ResourcePattern,
        ResourcePatternFilter,
        ResourceType,
    )

    name = topic_name("kp")
    pattern = ResourcePattern(ResourceType.TOPIC, name, ACLResourcePatternType.PREFIXED)
    wanted = ACL("User:carol", "*", ACLOperation.READ, ACLPermissionType.ALLOW, pattern)
    admin = KafkaAdminClient(**kp_conf(acls, "admin"))
    try:
        created = admin.create_acls([wanted])
        assert created["succeeded"] == [wanted] and not created["failed"]
        found_filter = ACLFilter(
            None,
            None,
            ACLOperation.ANY,
            ACLPermissionType.ANY,
            ResourcePatternFilter(ResourceType.TOPIC, name, ACLResourcePatternType.ANY),
        )
        described, error = admin.describe_acls(found_filter)
        assert error.errno == 0 and described == [wanted]
        deleted = admin.delete_acls([found_filter])
        assert deleted[0][1] == [wanted] and deleted[0][2].errno == 0
        described, _ = admin.describe_acls(found_filter)
        assert described == []
    finally:
        admin.close()
    # and a user without ALTER on the cluster may not create ACLs
    alice = KafkaAdminClient(**kp_conf(acls, "alice"))
    try:
        refused = alice.create_acls([wanted])
        assert refused["failed"] and not refused["succeeded"]
    finally:
        alice.close()


def test_confluent_admin_creates_describes_and_deletes(acls: AclServer) -> None:
    from confluent_kafka.admin import (
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    group = topic_name("cg")
    binding = AclBinding(
        ResourceType.GROUP, group, ResourcePatternType.LITERAL, "User:dave", "*", AclOperation.READ,
        AclPermissionType.ALLOW,
    )  # fmt: skip
    admin = confluent_admin(acls)
    for future in admin.create_acls([binding]).values():
        future.result(timeout=TIMEOUT_S)
    match = AclBindingFilter(
        ResourceType.GROUP,
        group,
        ResourcePatternType.MATCH,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    assert admin.describe_acls(match).result(timeout=TIMEOUT_S) == [binding]
    deleted = [b for f in admin.delete_acls([match]).values() for b in f.result(timeout=TIMEOUT_S)]
    assert deleted == [binding]
    assert admin.describe_acls(match).result(timeout=TIMEOUT_S) == []


def test_acls_persist_across_restart_and_cli_manages_them(acls: AclServer) -> None:
    topic = topic_name("restart")
    create_topics(acls, topic)
    sasl = [
        "--client-config", "security.protocol=SASL_PLAINTEXT", "--client-config", "sasl.mechanism=PLAIN",
        "--client-config", "sasl.username=admin", "--client-config", f"sasl.password={PASSWORDS['admin']}",
    ]  # fmt: skip
    added = riel_cli("acl", "add", "--principal", "User:bob", "--operation", "WRITE", "--topic", topic,
                     "--bootstrap", acls.bootstrap, *sasl)  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert produce_errors(acls, "bob", topic, 1) == [None]

    acls.server.stop()
    acls.server.start()
    assert produce_errors(acls, "bob", topic, 1) == [None]
    listed = riel_cli("acl", "list", "--topic", topic, "--json", "--bootstrap", acls.bootstrap, *sasl)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [
        {
            "principal": "User:bob", "host": "*", "permission": "ALLOW", "operation": "WRITE",
            "resource_type": "TOPIC", "pattern_type": "LITERAL", "resource_name": topic,
        }
    ]  # fmt: skip

    # --data-dir edits the file of the running server, which picks the change up within a second
    removed = riel_cli(
        "acl", "remove", "--principal", "User:bob", "--topic", topic, "--data-dir", str(acls.data_dir)
    )
    assert removed.returncode == 0, removed.stderr
    deadline = time.monotonic() + TIMEOUT_S
    while produce_errors(acls, "bob", topic, 1) != ["TOPIC_AUTHORIZATION_FAILED"]:
        assert time.monotonic() < deadline, "the server did not pick up the removed ACL"
        time.sleep(0.2)
    listed = riel_cli("acl", "list", "--topic", topic, "--json", "--data-dir", str(acls.data_dir))
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


def test_anonymous_plaintext_clients_get_nothing(acls: AclServer) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": acls.server.bootstrap})
    assert not set(admin.list_topics(timeout=TIMEOUT_S).topics)


def test_acl_file_is_written_atomically_in_the_data_dir(acls: AclServer) -> None:
    allow(acls, "erin", "DESCRIBE", "TOPIC", "erin-topic")
    document = json.loads((Path(acls.data_dir) / "acls.json").read_text())
    assert document["version"] == 1
    assert any(entry["principal"] == "User:erin" for entry in document["acls"])
    assert not (Path(acls.data_dir) / "acls.json.tmp").exists()


def test_transactional_id_acl_guards_transactions(acls: AclServer) -> None:
    """A transactional producer needs WRITE on its transactional id (and on the topic): without it
    init_transactions fails with TRANSACTIONAL_ID_AUTHORIZATION_FAILED; with it a transaction commits."""
    from confluent_kafka import KafkaException, Producer

    topic, transactional_id = topic_name("txn-acl"), f"txn-acl-{uuid.uuid4().hex[:8]}"
    create_topics(acls, topic)
    allow(acls, "bob", "WRITE", "TOPIC", topic)
    conf = confluent_conf(acls, "bob", **{"transactional.id": transactional_id})
    with pytest.raises(KafkaException) as refused:
        Producer(conf).init_transactions(TIMEOUT_S)
    assert refused.value.args[0].name() == "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
    allow(acls, "bob", "WRITE", "TRANSACTIONAL_ID", transactional_id)
    producer = Producer(conf)
    producer.init_transactions(TIMEOUT_S)
    producer.begin_transaction()
    producer.produce(topic, b"in a transaction")
    producer.commit_transaction(TIMEOUT_S)
