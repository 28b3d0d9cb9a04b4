"""Static membership (KIP-345): a consumer that restarts with the same group.instance.id within its
session timeout gets its partitions back, and the other members never notice (no rebalance)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import RielServer
from e2e.group_helpers import Worker, partitions_covered_once, stop_all, wait_until
from e2e.helpers import confluent_produce, create_topic, make_messages, unique_topic

PARTITIONS = 4
SESSION_MS = 15_000  # room to restart a process well within it


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_static_member_restart_keeps_partitions_without_rebalancing_others(
    riel: RielServer, tmp_path: Path, client: str
) -> None:
    topic = unique_topic("static")
    group = unique_topic("static-group")
    create_topic(riel.bootstrap, topic, PARTITIONS)

    def member(instance: str, incarnation: int) -> Worker:
        return Worker(
            client,
            riel.bootstrap,
            group,
            topic,
            tmp_path / f"{instance}-{incarnation}.jsonl",
            instance_id=instance,
            session_ms=SESSION_MS,
            name=f"{instance}#{incarnation}",
        )

    # The steady member joins first and so leads the group. A restarting *leader* is told to compute
    # the assignment again (JoinGroup v7 has no skip-assignment flag; Kafka added one in v9, KIP-814),
    # and kafka-python then rejoins when its fresh metadata differs from what it assigned with: a
    # client-side rebalance this test is not about.
    steady = member("steady", 0)
    workers = [steady]
    try:
        wait_until(
            lambda: steady.assignment() == list(range(PARTITIONS)), 45, "the first member to lead", workers
        )
        restarting = member("restarting", 0)
        workers.append(restarting)
        wait_until(
            lambda: partitions_covered_once([steady, restarting], PARTITIONS),
            45,
            lambda: f"both members to own partitions: {workers}",
            workers,
        )
        # Let any follow-up rebalance of the start settle, then remember what the steady member saw.
        wait_until(lambda: len(steady.callbacks()) >= 1, 10, "the steady member's first assignment", workers)
        confluent_produce(riel.bootstrap, topic, make_messages(200, tag="before"))
        wait_until(
            lambda: len(steady.records()) + len(restarting.records()) >= 200,
            30,
            "the first messages",
            workers,
        )
        steady_callbacks = steady.callbacks()
        owned = restarting.assignment()

        for incarnation, how in ((1, "kill"), (2, "close")):
            # A crash, then a clean shutdown: static members send no LeaveGroup either way.
            restarting.kill() if how == "kill" else restarting.terminate()
            restarting = member("restarting", incarnation)
            workers.append(restarting)
            wait_until(
                lambda r=restarting: r.assignment() is not None and r.assignment() != [],
                20,
                f"incarnation {incarnation} to get partitions",
                workers,
            )
            assert restarting.assignment() == owned
            confluent_produce(riel.bootstrap, topic, make_messages(100, tag=f"after{incarnation}"))
            wait_until(
                lambda r=restarting, tag=f"after{incarnation}": any(tag in v for _, _, v in r.records()),
                30,
                f"incarnation {incarnation} to consume",
                workers,
            )
            assert steady.callbacks() == steady_callbacks, "the steady member went through a rebalance"
            assert restarting.assignment() == owned
    finally:
        stop_all(workers)
