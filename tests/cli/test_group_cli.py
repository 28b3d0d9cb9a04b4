"""``riel group ...`` against a running server with a real consumer group (confluent-kafka), through the
real command line; and ``list``/``describe`` on a stopped server's data directory."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from cli import json_of, ok, riel_cli, unique
from conftest import RielServer, ServerFactory
from e2e.helpers import confluent_admin, confluent_produce, create_topic, make_messages

PARTITIONS = 3
PER_PARTITION = 10
# An hour ago, whole seconds: recent enough that retention (7 days by default) never removes them.
BASE_TS_MS = (int(time.time()) - 3600) * 1000
WAIT_S = 60.0


def _fill(bootstrap: str, topic: str) -> None:
    """10 messages per partition; partition 0's timestamps are one second apart from BASE_TS_MS."""
    create_topic(bootstrap, topic, PARTITIONS)
    for p in range(PARTITIONS):
        confluent_produce(
            bootstrap,
            topic,
            make_messages(PER_PARTITION, tag=f"p{p}"),
            partition=p,
            timestamps=[BASE_TS_MS + i * 1000 for i in range(PER_PARTITION)],
        )


def _member(bootstrap: str, group: str, topic: str) -> Any:
    """A consumer that joins ``group``, reads everything, and commits p0=10, p1=4 (p2 nothing)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": "cli-test-member",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,  # exact committed offsets, also on close
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    try:
        _read_all(consumer)
    except BaseException:
        consumer.close()
        raise
    consumer.commit(offsets=[TopicPartition(topic, 0, 10), TopicPartition(topic, 1, 4)], asynchronous=False)
    return consumer


def _read_all(consumer: Any) -> None:
    seen = 0
    errors: list[str] = []
    deadline = time.monotonic() + WAIT_S
    while seen < PARTITIONS * PER_PARTITION:
        assert time.monotonic() < deadline, (
            f"consumed only {seen} messages in {WAIT_S}s; assignment {consumer.assignment()}, "
            f"errors {errors[-5:]}"
        )
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error() is None:
            seen += 1
        else:
            errors.append(str(message.error()))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _committed(described: dict[str, Any]) -> dict[int, tuple[int | None, int | None, int | None]]:
    return {p["partition"]: (p["committed"], p["end"], p["lag"]) for p in described["partitions"]}


def _wait_state(bootstrap: str, group: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        described: dict[str, Any] = json_of(riel_cli("group", "describe", group, "--json", "-b", bootstrap))
        if described["state"] == state:
            return described
        assert time.monotonic() < deadline, f"group never became {state}: {described}"
        time.sleep(0.2)


def test_list_describe_reset_delete(riel: RielServer) -> None:
    b = ("-b", riel.bootstrap)
    topic, group = unique("cli-group-t"), unique("cli-group")
    _fill(riel.bootstrap, topic)
    consumer = _member(riel.bootstrap, group, topic)
    try:
        listed = {g["group"]: g for g in json_of(riel_cli("group", "list", "--json", *b))}
        assert listed[group] == {"group": group, "state": "Stable", "type": "consumer"}
        assert group in ok(riel_cli("group", "list", *b)).stdout

        described = json_of(riel_cli("group", "describe", group, "--json", *b))
        assert (described["state"], described["protocol_type"], described["protocol"]) == (
            "Stable",
            "consumer",
            "range",
        )
        (member,) = described["members"]
        assert member["client_id"] == "cli-test-member" and member["host"]
        assert member["assignment"] == [{"topic": topic, "partition": p} for p in range(PARTITIONS)]
        assert _committed(described) == {0: (10, 10, 0), 1: (4, 10, 6), 2: (None, 10, None)}
        assert described["total_lag"] == 6
        assert {p["client_id"] for p in described["partitions"]} == {"cli-test-member"}
        human = ok(riel_cli("group", "describe", group, *b)).stdout
        assert "cli-test-member" in human and "total lag: 6" in human

        # while the member is active: a dry run shows the plan, a real reset is refused
        plan = json_of(
            riel_cli(
                "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--dry-run", "--json", *b
            )
        )
        assert plan["dry_run"] is True and plan["applied"] is False and plan["active_members"] == 1
        assert [(e["partition"], e["current"], e["new"]) for e in plan["partitions"]] == [
            (0, 10, 0),
            (1, 4, 0),
            (2, None, 0),
        ]
        refused = riel_cli("group", "reset-offsets", group, "--topic", topic, "--to-earliest", *b)
        assert refused.returncode == 1, refused
        assert "active member" in refused.stderr and "hint:" in refused.stderr, refused.stderr
        assert "cli-test-member" in refused.stderr
        deleting = riel_cli("group", "delete", group, *b)
        assert deleting.returncode == 1 and "active members" in deleting.stderr and "hint:" in deleting.stderr
        # ... and nothing changed
        assert _committed(json_of(riel_cli("group", "describe", group, "--json", *b)))[1] == (4, 10, 6)
    finally:
        consumer.close()

    empty = _wait_state(riel.bootstrap, group, "Empty")
    assert empty["members"] == [] and _committed(empty) == {0: (10, 10, 0), 1: (4, 10, 6)}

    def reset(*args: str) -> dict[str, Any]:
        result: dict[str, Any] = json_of(riel_cli("group", "reset-offsets", group, *args, "--json", *b))
        assert result["applied"] is True
        return result

    def committed() -> dict[int, tuple[int | None, int | None, int | None]]:
        return _committed(json_of(riel_cli("group", "describe", group, "--json", *b)))

    reset("--topic", f"{topic}:1", "--to-earliest")
    assert committed() == {0: (10, 10, 0), 1: (0, 10, 10)}
    shifted = reset("--all-topics", "--shift-by", "-3")  # p1: 0 - 3 is clamped to the log start
    assert [(e["partition"], e["new"]) for e in shifted["partitions"]] == [(0, 7), (1, 0)]
    assert "clamped" in shifted["partitions"][1]["note"]
    assert committed() == {0: (7, 10, 3), 1: (0, 10, 10)}
    reset("--topic", f"{topic}:2", "--to-offset", "5")
    reset("--topic", f"{topic}:0", "--to-datetime", _iso(BASE_TS_MS + 4500))  # first at or after: 5
    assert committed() == {0: (5, 10, 5), 1: (0, 10, 10), 2: (5, 10, 5)}
    after_all = reset("--topic", f"{topic}:0", "--to-datetime", _iso(BASE_TS_MS + 60_000))  # none after
    assert after_all["partitions"][0]["new"] == 10
    dry = json_of(
        riel_cli("group", "reset-offsets", group, "--topic", topic, "--to-latest", "--dry-run", "--json", *b)
    )
    assert [e["new"] for e in dry["partitions"]] == [10, 10, 10]
    assert committed() == {0: (10, 10, 0), 1: (0, 10, 10), 2: (5, 10, 5)}  # the dry run changed nothing
    reset("--topic", topic, "--to-latest")
    described = json_of(riel_cli("group", "describe", group, "--json", *b))
    assert _committed(described) == {p: (10, 10, 0) for p in range(PARTITIONS)}
    assert described["total_lag"] == 0

    assert json_of(riel_cli("group", "delete", group, "--json", *b)) == {
        "group": group,
        "deleted": True,
        "error": None,
    }
    gone = riel_cli("group", "describe", group, *b)
    assert gone.returncode == 4 and "does not exist" in gone.stderr
    assert group not in {g["group"] for g in json_of(riel_cli("group", "list", "--json", *b))}
    again = riel_cli("group", "delete", group, *b)
    assert again.returncode == 4


def test_reset_usage_errors(riel: RielServer) -> None:
    b = ("-b", riel.bootstrap)
    topic = unique("cli-group-u")
    create_topic(riel.bootstrap, topic, 2)
    for args, message in [
        (("--topic", topic), "pick exactly one"),
        (("--topic", topic, "--to-earliest", "--to-latest"), "pick exactly one"),
        (("--to-earliest",), "--all-topics"),
        (("--topic", topic, "--all-topics", "--to-earliest"), "--all-topics"),
        (("--topic", f"{topic}:7", "--to-earliest"), "no partition 7"),
        (("--topic", f"{topic}:x", "--to-earliest"), "bad --topic"),
        (("--topic", topic, "--to-datetime", "yesterday"), "bad --to-datetime"),
        (("--topic", topic, "--shift-by", "1"), "have none"),
    ]:
        result = riel_cli("group", "reset-offsets", "nobody", *args, *b)
        assert result.returncode == 2, (args, result)
        assert message in result.stderr, (args, result.stderr)
    missing = riel_cli("group", "reset-offsets", "nobody", "--topic", "no-such-topic", "--to-earliest", *b)
    assert missing.returncode == 4 and "does not exist" in missing.stderr


def test_data_dir_list_and_describe(riel_factory: ServerFactory) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    server = riel_factory()
    topic, group = unique("cli-group-d"), unique("cli-group-d")
    _fill(server.bootstrap, topic)
    admin = confluent_admin(server.bootstrap)
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 3), TopicPartition(topic, 2, 10)])
    for future in admin.alter_consumer_group_offsets([request], request_timeout=20).values():
        future.result(timeout=30)
    busy = riel_cli("group", "list", "--data-dir", str(server.data_dir))
    assert busy.returncode == 2 and "hint:" in busy.stderr  # the server owns the directory
    assert server.stop() == 0

    d = ("--data-dir", str(server.data_dir))
    listed = json_of(riel_cli("group", "list", "--json", *d))
    assert listed == [{"group": group, "state": None, "type": None, "committed_partitions": 2}]
    described = json_of(riel_cli("group", "describe", group, "--json", *d))
    assert described["state"] is None and described["members"] == []
    assert _committed(described) == {0: (3, 10, 7), 2: (10, 10, 0)}
    assert described["total_lag"] == 7
    assert "total lag: 7" in ok(riel_cli("group", "describe", group, *d)).stdout
    assert riel_cli("group", "describe", "nobody", *d).returncode == 4
    both = riel_cli("group", "list", "-b", "127.0.0.1:1", *d)
    assert both.returncode == 2 and "exclude each other" in both.stderr
