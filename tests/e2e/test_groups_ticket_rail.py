"""Ticket rail: three consumers of one group share six partitions; every message is handled exactly once;
when one consumer closes (LeaveGroup) and another dies (SIGKILL, no more heartbeats) the survivor takes
over their partitions within the session timeout and resumes exactly at their committed offsets.

The three members are three different clients (kafka-python, confluent-kafka, aiokafka) in one group,
so the broker also has to pick the one assignment protocol they all support (roundrobin).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

from conftest import RielServer
from e2e.group_helpers import SESSION_MS, Worker, duplicates, partitions_covered_once, stop_all, wait_until
from e2e.helpers import confluent_produce, create_topic, make_messages, unique_topic

PARTITIONS = 6
FIRST_WAVE = 3_000
SECOND_WAVE = 1_500


def test_ticket_rail(riel: RielServer, tmp_path: Path) -> None:
    topic = unique_topic("rail")
    group = unique_topic("rail-group")
    create_topic(riel.bootstrap, topic, PARTITIONS)
    closer = Worker("kafka-python", riel.bootstrap, group, topic, tmp_path / "closer.jsonl", name="closer")
    victim = Worker("confluent", riel.bootstrap, group, topic, tmp_path / "victim.jsonl", name="victim")
    survivor = Worker("aiokafka", riel.bootstrap, group, topic, tmp_path / "survivor.jsonl", name="survivor")
    workers = [closer, victim, survivor]
    try:
        wait_until(
            lambda: partitions_covered_once(workers, PARTITIONS),
            45,
            lambda: f"every member to own partitions: {workers}",
            workers,
        )

        # Phase 1: every message exactly once, spread over all three members.
        first = make_messages(FIRST_WAVE, tag="first")
        confluent_produce(riel.bootstrap, topic, first)
        wanted = {m.value.decode() for m in first if m.value is not None}

        def consumed_values() -> set[str]:
            return {v for w in workers for _, _, v in w.records()}

        wait_until(
            lambda: wanted <= consumed_values(),
            60,
            lambda: f"{FIRST_WAVE} messages, got {len(consumed_values() & wanted)}",
            workers,
        )
        every = [r for w in workers for r in w.records()]
        assert len(every) == FIRST_WAVE, f"{len(every) - FIRST_WAVE} messages were delivered twice"
        assert duplicates(every) == []
        assert all(w.records() for w in workers), f"a member consumed nothing: {workers}"
        assert all(partitions_covered_once(workers, PARTITIONS) for _ in range(1)), "a rebalance happened"

        # Phase 2: messages keep coming while one member leaves and another dies.
        second = make_messages(SECOND_WAVE, tag="second")
        producing = threading.Thread(
            target=lambda: [
                confluent_produce(riel.bootstrap, topic, second[i : i + 100])
                for i in range(0, SECOND_WAVE, 100)
            ]
        )
        producing.start()
        wait_until(
            lambda: any("second" in v for w in (closer, victim) for _, _, v in w.records()),
            30,
            "the doomed members to start on the second wave",
            workers,
        )
        owned_before = {w.name: set(w.assignment() or []) for w in workers}
        closer.terminate()  # commits what it consumed, then LeaveGroup
        victim.kill()
        gone = owned_before["closer"] | owned_before["victim"]
        took = wait_until(
            lambda: survivor.assignment() == list(range(PARTITIONS)),
            30,
            lambda: f"the survivor to own everything: {survivor.assignment()}",
            [survivor],
        )
        # The victim's last heartbeat was before the kill, so its session ends within SESSION_MS of it;
        # the rest is the survivor noticing (one heartbeat interval) and rejoining.
        assert took < SESSION_MS / 1000 + 2.0, f"takeover took {took:.1f}s"
        producing.join(60)
        assert not producing.is_alive()

        # Everything produced is consumed by somebody...
        all_values = {m.value.decode() for m in first + second if m.value is not None}
        wait_until(
            lambda: all_values <= consumed_values(),
            60,
            lambda: f"all messages, missing {len(all_values - consumed_values())}",
            [survivor],
        )
        # ... and the survivor resumed each taken-over partition exactly at the committed offset.
        committed_by_previous = {**victim.committed(), **closer.committed()}
        survivor_after = [r for r in survivor.records() if r[0] in gone]
        first_offset: dict[int, int] = {}
        for p, o, _ in survivor_after:
            first_offset.setdefault(p, o)
        for p in gone:
            if p in committed_by_previous and p in first_offset:
                assert first_offset[p] == committed_by_previous[p], (
                    f"partition {p}: survivor started at {first_offset[p]}, "
                    f"committed offset was {committed_by_previous[p]}"
                )
        # Re-deliveries are limited to what the victim consumed but had not committed when killed.
        victim_uncommitted = {(p, o) for p, o, _ in victim.records() if o >= victim.committed().get(p, 0)}
        everything = [r for w in workers for r in w.records()]
        dupes = set(duplicates(everything))
        assert dupes <= victim_uncommitted, (
            f"committed messages delivered again: {sorted(dupes - victim_uncommitted)[:5]}"
        )
        by_partition: dict[int, list[int]] = defaultdict(list)
        for p, o, _ in everything:
            by_partition[p].append(o)
        for p, offsets in by_partition.items():
            assert sorted(set(offsets)) == list(range(max(offsets) + 1)), f"partition {p} has a gap"
    finally:
        stop_all(workers)
