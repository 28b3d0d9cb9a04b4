"""``riel topic ...`` against a running server, through the real command line."""

from __future__ import annotations

import pytest

from cli import json_of, ok, riel_cli, unique
from conftest import RielServer


def test_create_list_describe_alter_delete(riel: RielServer) -> None:
    b = ("-b", riel.bootstrap)
    name = unique("cli-topic")
    created = json_of(
        riel_cli("topic", "create", name, "-p", "3", "-c", "retention.ms=100000", "-c",
                 "cleanup.policy=compact", "--json", *b)
    )  # fmt: skip
    assert created == {
        "topic": name,
        "created": True,
        "partitions": 3,
        "configs": {"retention.ms": "100000", "cleanup.policy": "compact"},
    }
    # a compacted topic takes keyed messages only
    ok(riel_cli("produce", name, "-p", "1", "-k", ":", *b, input="a:one\nb:two\n"))

    listed = {t["name"]: t for t in json_of(riel_cli("topic", "list", "--json", *b))}
    assert listed[name] == {
        "name": name,
        "partitions": 3,
        "messages": 2,
        "size_bytes": None,  # the Kafka protocol does not say; --data-dir does
        "configs": {"cleanup.policy": "compact", "retention.ms": "100000"},
    }
    human = ok(riel_cli("topic", "list", *b)).stdout
    assert name in human and "retention.ms=100000" in human

    described = json_of(riel_cli("topic", "describe", name, "--json", *b))
    assert described["name"] == name and described["partition_count"] == 3
    assert len(described["topic_id"]) == 36
    assert [
        (p["partition"], p["start_offset"], p["end_offset"], p["messages"]) for p in described["partitions"]
    ] == [
        (0, 0, 0, 0),
        (1, 0, 2, 2),
        (2, 0, 0, 0),
    ]
    configs = described["configs"]
    assert configs["retention.ms"] == {"value": "100000", "default": False, "source": "DYNAMIC_TOPIC_CONFIG"}
    assert configs["segment.bytes"]["default"] is True
    assert "* retention.ms" in ok(riel_cli("topic", "describe", name, *b)).stdout

    altered = json_of(
        riel_cli("topic", "alter", name, "-c", "retention.ms=5000", "--delete-config", "cleanup.policy",
                 "-p", "4", "--json", *b)
    )  # fmt: skip
    assert altered == {
        "topic": name,
        "set": {"retention.ms": "5000"},
        "deleted": ["cleanup.policy"],
        "partitions": 4,
    }
    described = json_of(riel_cli("topic", "describe", name, "--json", *b))
    assert described["configs"]["retention.ms"]["value"] == "5000"
    assert described["configs"]["cleanup.policy"] == {
        "value": "delete",
        "default": True,
        "source": "DEFAULT_CONFIG",
    }
    assert described["partition_count"] == 4

    assert json_of(riel_cli("topic", "delete", name, "--yes", "--json", *b)) == {"deleted": [name]}
    assert name not in {t["name"] for t in json_of(riel_cli("topic", "list", "--json", *b))}


def test_create_twice_fails_unless_if_not_exists(riel: RielServer) -> None:
    b = ("-b", riel.bootstrap)
    name = unique("cli-dup")
    ok(riel_cli("topic", "create", name, *b))
    again = riel_cli("topic", "create", name, *b)
    assert again.returncode == 1
    assert "already exists" in again.stderr and "--if-not-exists" in again.stderr
    assert json_of(riel_cli("topic", "create", name, "--if-not-exists", "--json", *b))["created"] is False


@pytest.mark.parametrize(
    "command",
    [
        ("topic", "describe"),
        ("topic", "alter", "-c", "retention.ms=1"),
        ("topic", "delete", "--yes"),
        ("consume",),
        ("replay",),
    ],
)
def test_unknown_topic_exits_4_with_hint(riel: RielServer, command: tuple[str, ...]) -> None:
    name = unique("cli-missing")
    args = (*command[:2], name, *command[2:]) if command[0] == "topic" else (command[0], name)
    result = riel_cli(*args, "-b", riel.bootstrap)
    assert result.returncode == 4, result
    assert f"topic {name!r} does not exist on {riel.bootstrap}" in result.stderr
    assert "hint: list the topics with `riel topic list`" in result.stderr
    assert result.stdout == ""


def test_unreachable_server_exits_3_with_hint() -> None:
    result = riel_cli("topic", "list", "-b", "127.0.0.1:1")
    assert result.returncode == 3, result
    assert "no Kafka server answered at 127.0.0.1:1" in result.stderr
    assert "hint: start one with `riel serve`" in result.stderr
    assert "--data-dir" in result.stderr
    assert "rdkafka" not in result.stderr  # librdkafka's own connection logs stay quiet


def test_append_only_topic_deletion_is_refused(riel: RielServer) -> None:
    b = ("-b", riel.bootstrap)
    name = unique("cli-append-only")
    ok(riel_cli("topic", "create", name, "-c", "riel.append.only=true", *b))
    result = riel_cli("topic", "delete", name, "--yes", *b)
    assert result.returncode == 1, result
    assert "TOPIC_DELETION_DISABLED" in result.stderr and "append-only" in result.stderr
    weaken = riel_cli("topic", "alter", name, "-c", "riel.append.only=false", *b)
    assert weaken.returncode == 1 and "POLICY_VIOLATION" in weaken.stderr, weaken
    assert name in {t["name"] for t in json_of(riel_cli("topic", "list", "--json", *b))}


def test_usage_errors_exit_2(riel: RielServer) -> None:
    b = ("-b", riel.bootstrap)
    bad = riel_cli("topic", "create", unique("cli-bad"), "-c", "retention.ms", *b)
    assert bad.returncode == 2 and "expected NAME=VALUE" in bad.stderr
    nothing = riel_cli("topic", "alter", unique("cli-bad"), *b)
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
    invalid = riel_cli("topic", "create", "bad/name", *b)
    assert invalid.returncode == 1 and "TOPIC_EXCEPTION" in invalid.stderr, invalid
    assert "hint: topic names use ASCII letters" in invalid.stderr
