"""Restarting ``riel serve`` on the same data dir serves the same topics, topic ids, partition counts,
topic configs (set at creation, by AlterConfigs and by IncrementalAlterConfigs) and offsets."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import RielServer, ServerFactory
from e2e.helpers import (
    confluent_admin,
    confluent_consume,
    confluent_describe_topics,
    confluent_incremental_alter,
    confluent_list_topics,
    confluent_produce,
    confluent_topic_configs,
    confluent_watermarks,
    create_topic,
    kp_admin,
    make_messages,
    unique_topic,
)


def snapshot(server: RielServer, topics: list[str]) -> dict[str, Any]:
    listed = confluent_list_topics(server.bootstrap)
    described = confluent_describe_topics(server.bootstrap, topics)
    out: dict[str, Any] = {}
    for t in topics:
        configs = confluent_topic_configs(server.bootstrap, t)
        out[t] = {
            "partitions": listed.get(t),
            "topic_id": str(described[t].topic_id),
            "configs": {k: v for k, (v, source) in configs.items() if source == "DYNAMIC_TOPIC_CONFIG"},
            "watermarks": [confluent_watermarks(server.bootstrap, t, p) for p in range(listed[t])],
        }
    return out


@pytest.mark.parametrize("how", ["graceful", "kill9"])
def test_restart_keeps_topics_configs_and_offsets(riel_factory: ServerFactory, how: str) -> None:
    from confluent_kafka import OFFSET_BEGINNING
    from kafka.admin import ConfigResource, ConfigResourceType

    server = riel_factory(flush="always", num_partitions=2)
    a, b, auto, doomed = (unique_topic(x) for x in ("rs-a", "rs-b", "rs-auto", "rs-doomed"))

    create_topic(server.bootstrap, a, 3, {"retention.ms": "3600000", "cleanup.policy": "delete"})
    with kp_admin(server.bootstrap) as admin:
        # AlterConfigs (non-incremental): kafka-python re-sends the other modified keys itself.
        result = admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, a, {"retention.bytes": "1048576"})], incremental=False
        )
        assert result == {"topic": {a: "OK"}}, result
        admin.create_partitions({a: 4}, timeout_ms=20_000)
    create_topic(server.bootstrap, b, 1)
    confluent_incremental_alter(
        server.bootstrap, b, {"max.message.bytes": "200000", "segment.bytes": "1048576"}
    )
    confluent_incremental_alter(server.bootstrap, b, {"segment.bytes": None, "retention.ms": "7200000"})
    create_topic(server.bootstrap, doomed, 1)
    admin = confluent_admin(server.bootstrap)
    (f,) = admin.delete_topics([doomed], request_timeout=20).values()
    f.result(timeout=30)

    msgs = make_messages(300)
    for t in (a, b, auto):  # `auto` is created by the first produce (2 partitions: --num-partitions)
        confluent_produce(server.bootstrap, t, msgs, conf={"batch.num.messages": 40})

    topics = [a, b, auto]
    before = snapshot(server, topics)
    assert before[a]["partitions"] == 4
    assert before[a]["configs"] == {
        "retention.ms": "3600000",
        "cleanup.policy": "delete",
        "retention.bytes": "1048576",
    }
    assert before[b]["configs"] == {"max.message.bytes": "200000", "retention.ms": "7200000"}
    assert before[auto]["partitions"] == 2
    assert before[auto]["configs"] == {}
    assert doomed not in confluent_list_topics(server.bootstrap)
    contents = {
        t: confluent_consume(
            server.bootstrap,
            t,
            dict.fromkeys(range(before[t]["partitions"]), OFFSET_BEGINNING),
            {p: hw for p, (_, hw) in enumerate(before[t]["watermarks"])},
        )
        for t in topics
    }

    server.restart(graceful=how == "graceful")

    after = snapshot(server, topics)
    assert after == before
    assert doomed not in confluent_list_topics(server.bootstrap)
    for t in topics:
        again = confluent_consume(
            server.bootstrap,
            t,
            dict.fromkeys(range(after[t]["partitions"]), OFFSET_BEGINNING),
            {p: hw for p, (_, hw) in enumerate(after[t]["watermarks"])},
        )
        key = lambda r: (r.partition, r.offset)  # noqa: E731
        assert sorted(again, key=key) == sorted(contents[t], key=key), f"{t}: records differ after restart"

    # Appends continue from the recovered ends, in every partition.
    for p, (_, hw) in enumerate(after[a]["watermarks"]):
        assert confluent_produce(server.bootstrap, a, make_messages(1, tag="post"), partition=p) == [(p, hw)]
