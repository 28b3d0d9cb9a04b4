"""Incremental cooperative rebalancing (KIP-429) with librdkafka's cooperative-sticky assignor: a member
joining takes partitions over without the first member giving up the rest, and a member leaving hands
its partitions back; every message is consumed exactly once throughout."""

from __future__ import annotations

from pathlib import Path

from conftest import RielServer
from e2e.group_helpers import Worker, duplicates, partitions_covered_once, stop_all, wait_until
from e2e.helpers import confluent_produce, create_topic, make_messages, unique_topic

PARTITIONS = 6


def test_cooperative_sticky_join_and_leave(riel: RielServer, tmp_path: Path) -> None:
    topic = unique_topic("coop")
    group = unique_topic("coop-group")
    create_topic(riel.bootstrap, topic, PARTITIONS)

    def member(name: str) -> Worker:
        return Worker(
            "confluent",
            riel.bootstrap,
            group,
            topic,
            tmp_path / f"{name}.jsonl",
            assignor="cooperative-sticky",
            name=name,
        )

    first = member("first")
    workers = [first]
    try:
        wait_until(
            lambda: first.assignment() == list(range(PARTITIONS)), 45, "the first member to own all", workers
        )
        confluent_produce(riel.bootstrap, topic, make_messages(600, tag="one"))
        wait_until(lambda: len(first.records()) >= 600, 30, "wave one", workers)

        second = member("second")
        workers.append(second)
        wait_until(
            lambda: partitions_covered_once(workers, PARTITIONS),
            45,
            lambda: f"the partitions to be shared: {workers}",
            workers,
        )
        kept = set(first.assignment() or [])
        # Cooperative: the first member only ever revoked what moved, never everything it had.
        revoked = [set(parts) for kind, parts in first.callbacks() if kind == "revoke"]
        assert revoked and all(r.isdisjoint(kept) for r in revoked), first.callbacks()
        confluent_produce(riel.bootstrap, topic, make_messages(600, tag="two"))
        wait_until(lambda: sum(len(w.records()) for w in workers) >= 1200, 30, "wave two", workers)
        assert second.records(), "the new member consumed nothing"

        second.terminate()
        wait_until(
            lambda: first.assignment() == list(range(PARTITIONS)),
            30,
            lambda: f"the first member to get everything back: {first.assignment()}",
            workers,
        )
        confluent_produce(riel.bootstrap, topic, make_messages(600, tag="three"))
        wait_until(lambda: sum(len(w.records()) for w in workers) >= 1800, 30, "wave three", workers)
        everything = [r for w in workers for r in w.records()]
        assert duplicates(everything) == []
        assert len(everything) == 1800
    finally:
        stop_all(workers)
