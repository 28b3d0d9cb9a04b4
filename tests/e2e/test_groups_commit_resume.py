"""Commit and resume: a group continues from its committed offsets across a consumer restart (with a
different client library, so the committed offsets are plain Kafka data) and across ``kill -9`` of
the broker (committed offsets are durable before OffsetCommit is answered)."""

from __future__ import annotations

from pathlib import Path

from conftest import ServerFactory
from e2e.group_helpers import Worker, duplicates, stop_all, wait_until
from e2e.helpers import confluent_produce, create_topic, kp_admin, make_messages, unique_topic

PARTITIONS = 3


def test_group_resumes_after_consumer_and_broker_restarts(
    riel_factory: ServerFactory, tmp_path: Path
) -> None:
    server = riel_factory(flush="always")
    topic = unique_topic("resume")
    group = unique_topic("resume-group")
    create_topic(server.bootstrap, topic, PARTITIONS)
    waves = [make_messages(400, tag=f"wave{i}") for i in range(3)]
    seen: list[tuple[int, int, str]] = []

    def consume_wave(client: str, wave: int) -> None:
        worker = Worker(client, server.bootstrap, group, topic, tmp_path / f"{client}-{wave}.jsonl")
        try:
            wanted = sorted(m.value.decode() for m in waves[wave] if m.value is not None)
            if wave > 0:
                # Produced while nobody consumed: the worker must find it through committed offsets.
                confluent_produce(server.bootstrap, topic, waves[wave])
            else:
                wait_until(
                    lambda: worker.assignment() == list(range(PARTITIONS)),
                    45,
                    lambda: f"{client} to own every partition",
                    [worker],
                )
                confluent_produce(server.bootstrap, topic, waves[wave])
            wait_until(
                lambda: len(worker.records()) >= len(wanted),
                60,
                lambda: f"{client} to consume wave {wave}: {len(worker.records())}/{len(wanted)}",
                [worker],
            )
            worker.terminate()  # commits, leaves the group
            got = worker.records()
            # Exactly the new wave: nothing from before (committed) and nothing missing.
            assert sorted(v for _, _, v in got) == wanted, f"{client}: not exactly wave {wave}"
            seen.extend(got)
        finally:
            stop_all([worker])

    consume_wave("confluent", 0)
    consume_wave("kafka-python", 1)
    with kp_admin(server.bootstrap) as admin:
        before = admin.list_group_offsets(group)[group]
    assert sum(o.offset for o in before.values()) == 800
    server.kill9()
    server.start()
    with kp_admin(server.bootstrap) as admin:
        after = admin.list_group_offsets(group)[group]
    assert {tp: o.offset for tp, o in after.items()} == {tp: o.offset for tp, o in before.items()}
    consume_wave("aiokafka", 2)
    assert duplicates(seen) == []
