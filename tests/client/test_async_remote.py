"""The async forms over the remote SDK: the same AsyncEventLog against a real `riel serve`."""

from __future__ import annotations

import asyncio
import uuid

from conftest import RielServer
from riel.client import connect_async


def test_connect_async_publishes_consumes_commits_and_replays(riel: RielServer) -> None:
    topic, group = f"async-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        async with connect_async(riel.bootstrap, value_codec="json") as log:
            await log.create_topic(topic, partitions=2)
            first = await log.publish(topic, {"n": 0}, key="k")
            rest = await log.publish_many(topic, [{"n": i} for i in range(1, 6)], key="k")
            assert [p.offset for p in [first, *rest]] == list(range(6))
            assert len({p.partition for p in [first, *rest]}) == 1  # one key, one partition
            consumer = log.subscribe(topic, group=group)
            got = [m async for m in consumer.messages(idle_timeout=5, max_messages=6)]
            assert [m.value["n"] for m in got] == list(range(6))
            await consumer.commit()
            assert await log.lag(group) == {(topic, first.partition): 0}
            await consumer.close()
            replayed = [m.value["n"] async for m in log.replay(topic, since=3)]
            assert replayed == [3, 4, 5]

    asyncio.run(asyncio.wait_for(main(), 60))
