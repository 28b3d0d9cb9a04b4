"""``riel txn list/describe`` through the real command line, against a running server (over
ListTransactions/DescribeTransactions) and on its data directory (the state file, read-only, while the
server runs): one confluent-kafka transaction left Ongoing, another committed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli import json_of, ok, riel_cli, unique
from conftest import RielServer
from e2e.helpers import create_topic, kp_admin

OP_TIMEOUT_S = 15.0  # one transactional call (init, flush, commit, abort)
WAIT_S = 15.0
TXN_TIMEOUT_MS = 60_000


def _producer(bootstrap: str, transactional_id: str) -> Any:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            "transaction.timeout.ms": TXN_TIMEOUT_MS,
            "linger.ms": 0,
        }
    )
    producer.init_transactions(OP_TIMEOUT_S)
    producer.begin_transaction()
    return producer


def _produce(producer: Any, topic: str, partitions: list[int]) -> None:
    for p in partitions:
        producer.produce(topic, value=f"v{p}".encode(), partition=p)
    assert producer.flush(OP_TIMEOUT_S) == 0, "records still unsent after flush"


def _states(bootstrap: str) -> dict[str, str]:
    """ListTransactions of kafka-python's admin client (an independent client of our API)."""
    with kp_admin(bootstrap) as admin:
        listings = admin.list_transactions()
    return {t.transactional_id: t.state.value for per_broker in listings.values() for t in per_broker}


@pytest.fixture(scope="module")
def txns(riel: RielServer) -> Iterator[dict[str, Any]]:
    """An Ongoing transaction (partitions 0 and 2) and a committed one (partition 1)."""
    topic = unique("cli-txn-t")
    open_id, done_id = unique("cli-txn-open"), unique("cli-txn-done")
    create_topic(riel.bootstrap, topic, 3)
    before_ms = int(time.time() * 1000)
    hanging = _producer(riel.bootstrap, open_id)
    try:
        _produce(hanging, topic, [0, 2])
        after_ms = int(time.time() * 1000)
        committer = _producer(riel.bootstrap, done_id)
        _produce(committer, topic, [1])
        committer.commit_transaction(OP_TIMEOUT_S)
        deadline = time.monotonic() + WAIT_S
        while (states := _states(riel.bootstrap)).get(done_id) != "CompleteCommit":
            assert time.monotonic() < deadline, f"commit never completed: {states}"
            time.sleep(0.05)
        yield {
            "topic": topic,
            "open": open_id,
            "done": done_id,
            "before_ms": before_ms,
            "after_ms": after_ms,
        }
    finally:
        hanging.abort_transaction(OP_TIMEOUT_S)


def _ours(listed: list[dict[str, Any]], t: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        row["transactional_id"]: row for row in listed if row["transactional_id"] in (t["open"], t["done"])
    }


def test_kafka_python_lists_both(riel: RielServer, txns: dict[str, Any]) -> None:
    states = _states(riel.bootstrap)
    assert (states.get(txns["open"]), states.get(txns["done"])) == ("Ongoing", "CompleteCommit")


def test_list_and_describe_over_kafka(riel: RielServer, txns: dict[str, Any]) -> None:
    b = ("-b", riel.bootstrap)
    open_id, done_id = txns["open"], txns["done"]
    listed = _ours(json_of(riel_cli("txn", "list", "--json", *b)), txns)
    assert {i: r["state"] for i, r in listed.items()} == {open_id: "Ongoing", done_id: "CompleteCommit"}
    assert all(isinstance(r["producer_id"], int) and r["producer_id"] >= 0 for r in listed.values())
    assert listed[open_id]["producer_id"] != listed[done_id]["producer_id"]

    ongoing = _ours(json_of(riel_cli("txn", "list", "--json", "--state", "ongoing", *b)), txns)
    assert list(ongoing) == [open_id]
    by_pid = json_of(
        riel_cli("txn", "list", "--json", "--producer-id", str(listed[done_id]["producer_id"]), *b)
    )
    assert [r["transactional_id"] for r in by_pid] == [done_id]
    hanging = _ours(json_of(riel_cli("txn", "list", "--json", "--min-duration-ms", "0", *b)), txns)
    assert list(hanging) == [open_id]
    assert open_id in ok(riel_cli("txn", "list", *b)).stdout

    described = json_of(riel_cli("txn", "describe", open_id, "--json", *b))
    assert described["transactional_id"] == open_id and described["state"] == "Ongoing"
    assert described["producer_id"] == listed[open_id]["producer_id"]
    assert described["producer_epoch"] == 0  # a new transactional id: the first epoch
    assert described["timeout_ms"] == TXN_TIMEOUT_MS
    assert txns["before_ms"] - 1000 <= described["start_time_ms"] <= txns["after_ms"] + 1000
    assert described["start_time"].endswith("Z") and described["duration_ms"] >= 0
    topic = txns["topic"]
    assert described["partitions"] == [{"topic": topic, "partition": 0}, {"topic": topic, "partition": 2}]
    human = ok(riel_cli("txn", "describe", open_id, *b)).stdout
    assert "Ongoing" in human and str(described["start_time_ms"]) in human and topic in human

    both = json_of(riel_cli("txn", "describe", open_id, done_id, "--json", *b))
    assert [(d["transactional_id"], d["state"]) for d in both] == [
        (open_id, "Ongoing"),
        (done_id, "CompleteCommit"),
    ]
    assert both[1]["producer_id"] == listed[done_id]["producer_id"]

    unknown = riel_cli("txn", "describe", "no-such-txn-id", *b)
    assert unknown.returncode == 4 and "'no-such-txn-id' does not exist" in unknown.stderr
    partly = riel_cli("txn", "describe", open_id, "no-such-txn-id", "--json", *b)
    assert partly.returncode == 4 and '"Ongoing"' in partly.stdout


def test_data_dir_matches_the_server(riel: RielServer, txns: dict[str, Any]) -> None:
    b, d = ("-b", riel.bootstrap), ("--data-dir", str(riel.data_dir))
    open_id, done_id = txns["open"], txns["done"]
    state_file = riel.data_dir / "transactions" / "state.log"
    size_before = state_file.stat().st_size

    listed = _ours(json_of(riel_cli("txn", "list", "--json", *d)), txns)
    assert {i: r["state"] for i, r in listed.items()} == {open_id: "Ongoing", done_id: "CompleteCommit"}
    over_kafka = _ours(json_of(riel_cli("txn", "list", "--json", *b)), txns)
    for ident, row in listed.items():
        assert row["producer_id"] == over_kafka[ident]["producer_id"]
    assert listed[open_id]["partitions"] == [
        {"topic": txns["topic"], "partition": 0},
        {"topic": txns["topic"], "partition": 2},
    ]
    ongoing = _ours(json_of(riel_cli("txn", "list", "--json", "--state", "Ongoing", *d)), txns)
    assert list(ongoing) == [open_id]

    from_disk = json_of(riel_cli("txn", "describe", open_id, done_id, "--json", *d))
    from_server = json_of(riel_cli("txn", "describe", open_id, done_id, "--json", *b))
    volatile = ("coordinator", "duration_ms")
    for disk, server in zip(from_disk, from_server, strict=True):
        assert {k: v for k, v in disk.items() if k not in volatile} == {
            k: v for k, v in server.items() if k not in volatile
        }
    unknown = riel_cli("txn", "describe", "no-such-txn-id", *d)
    assert unknown.returncode == 4 and "does not exist" in unknown.stderr
    assert state_file.stat().st_size == size_before  # read-only

    excluded = riel_cli("txn", "list", *b, *d)
    assert excluded.returncode == 2 and "exclude each other" in excluded.stderr
    bad = riel_cli("txn", "list", "--client-config", "no.such.key=1", *b)
    assert bad.returncode == 2 and "no.such.key" in bad.stderr


def test_read_transaction_states_is_read_only(tmp_path: Path) -> None:
    from riel.storage.txn_state_log import TransactionStateLog, read_transaction_states

    assert read_transaction_states(tmp_path) == {}
    assert not (tmp_path / "transactions").exists()  # nothing created
    log = TransactionStateLog(tmp_path)
    log.open()
    log.write({"id": "a", "state": "Ongoing", "n": 1})
    log.write({"id": "b", "state": "Empty"})
    log.write({"id": "a", "state": "CompleteCommit", "n": 2})
    log.write({"id": "b", "deleted": True})
    log.close()
    with open(log.path, "ab") as f:
        f.write(b'0badc0de {"id": "torn')  # a write in progress
    data = log.path.read_bytes()
    assert read_transaction_states(tmp_path) == {"a": {"id": "a", "state": "CompleteCommit", "n": 2}}
    assert log.path.read_bytes() == data  # the torn tail is ignored, not truncated


def test_client_config_maps_to_kafka_python() -> None:
    from riel.cli.txn import client_settings

    assert client_settings(
        ["security.protocol=sasl_plaintext", "sasl.mechanism=scram-sha-256", "sasl.username=admin"]
    ) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "admin",
    }
