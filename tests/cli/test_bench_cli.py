"""``riel bench`` against a running server: small, bounded runs through the real command line."""

from __future__ import annotations

from cli import json_of, ok, riel_cli, unique
from conftest import RielServer, free_port
from e2e.helpers import confluent_list_topics, confluent_produce, create_topic, make_messages

PHASE_FIELDS = {"messages", "bytes", "seconds", "msgs_per_s", "mb_per_s", "errors"}


def test_bench_json_on_a_fresh_topic_that_is_deleted_after(riel: RielServer) -> None:
    before = set(confluent_list_topics(riel.bootstrap))
    result = json_of(
        riel_cli(
            "bench", "--messages", "3000", "--size", "64", "--partitions", "2", "--json", "-b", riel.bootstrap
        )
    )
    assert result["topic"].startswith("riel-bench-") and result["topic_deleted"] is True
    assert (result["partitions"], result["message_size"], result["acks"]) == (2, 64, "all")
    for side in ("produce", "consume"):
        phase = result[side]
        assert set(phase) == PHASE_FIELDS, phase
        assert (phase["messages"], phase["bytes"], phase["errors"]) == (3000, 3000 * 64, 0), phase
        assert phase["seconds"] > 0 and phase["msgs_per_s"] > 0 and phase["mb_per_s"] > 0
        assert abs(phase["msgs_per_s"] - 3000 / phase["seconds"]) <= 0.001 * phase["msgs_per_s"] + 1
    assert result["topic"] not in set(confluent_list_topics(riel.bootstrap)) | before


def test_bench_on_a_given_topic_reads_only_its_own_messages_and_keeps_the_topic(riel: RielServer) -> None:
    topic = unique("cli-bench")
    create_topic(riel.bootstrap, topic, 3)
    confluent_produce(riel.bootstrap, topic, make_messages(50))  # already there: not counted
    human = ok(
        riel_cli("bench", "-n", "600", "-s", "10", "--topic", topic, "--acks", "1", "--linger-ms", "0",
                 "--batch-size", "16384", "-b", riel.bootstrap)
    ).stdout  # fmt: skip
    assert "produce" in human and "consume" in human and "msgs/s" in human and "MB/s" in human
    result = json_of(
        riel_cli("bench", "-n", "600", "-s", "10", "--topic", topic, "--json", "-b", riel.bootstrap)
    )
    assert result["topic_deleted"] is False and result["partitions"] == 3
    assert result["produce"]["messages"] == 600 and result["consume"]["messages"] == 600
    assert confluent_list_topics(riel.bootstrap)[topic] == 3


def test_bench_without_a_server() -> None:
    result = riel_cli("bench", "-n", "10", "-b", f"127.0.0.1:{free_port()}")
    assert result.returncode == 3 and "riel serve" in result.stderr
