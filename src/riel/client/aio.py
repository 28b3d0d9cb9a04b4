"""``async`` forms of the SDK: the same ``EventLog``/``Consumer`` with awaitable methods.

``riel.open_async(path)`` and ``riel.connect_async(bootstrap)`` wrap the synchronous implementations:
``publish`` returns an ``asyncio.Future`` at once (await it for the ``Published`` position); calls
that may block (topic admin, flush, commits, waiting for messages) run in a worker thread so the event
loop never stalls, and a consumer hands out already-buffered messages without leaving the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from riel.client.api import (
    Consumer,
    EventLog,
    Header,
    Message,
    Published,
    PublishFuture,
    StartPosition,
    TopicDescription,
    TopicPartition,
    When,
)
from riel.client.codecs import CodecSpec

T = TypeVar("T")

REPLAY_CHUNK = 1000  # messages moved from the replay thread to the event loop at a time


def bridge(future: PublishFuture[T]) -> asyncio.Future[T]:
    """An asyncio future settled (on the running loop) when the SDK's future is."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[T] = loop.create_future()

    def settle(_: object) -> None:
        if result.done():
            return
        try:
            value = future.result(0)
        except BaseException as exc:
            result.set_exception(exc)
        else:
            result.set_result(value)

    def on_done(_: object) -> None:
        loop.call_soon_threadsafe(settle, None)

    future.add_done_callback(on_done)
    return result


class AsyncConsumer:
    """``async for message in consumer`` plus the ``Consumer`` methods as coroutines."""

    def __init__(self, consumer: Consumer) -> None:
        self.sync = consumer
        # A waiting poll runs in a worker thread. If the awaiting task is cancelled, the thread still
        # takes a message; it is kept here for the next poll instead of being lost.
        self._inflight: asyncio.Future[Message | None] | None = None

    async def poll(self, timeout: float | None = None) -> Message | None:
        if self._inflight is None:
            if self.sync.has_buffered():  # in memory already: no thread hop, no I/O on the loop
                return self.sync.poll(0)
            self._inflight = asyncio.ensure_future(asyncio.to_thread(self.sync.poll, timeout))
        inflight = self._inflight
        try:
            return await asyncio.shield(inflight)  # cancelling us leaves the poll (and its message)
        finally:
            if inflight.done() and self._inflight is inflight:
                self._inflight = None

    async def __aiter__(self) -> AsyncIterator[Message]:
        while not self.sync.closed:
            message = await self.poll(0.5)
            if message is not None:
                yield message

    async def messages(
        self, idle_timeout: float | None = None, max_messages: int | None = None
    ) -> AsyncIterator[Message]:
        count = 0
        while max_messages is None or count < max_messages:
            message = await self.poll(idle_timeout)
            if message is None:
                return
            count += 1
            yield message

    async def commit(
        self, message: Message | None = None, *, offsets: dict[TopicPartition, int] | None = None
    ) -> None:
        await asyncio.to_thread(self.sync.commit, message, offsets=offsets)

    async def committed(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int | None]:
        return await asyncio.to_thread(self.sync.committed, partitions)

    def assignment(self) -> set[TopicPartition]:
        return self.sync.assignment()

    def position(self, topic: str, partition: int) -> int:
        return self.sync.position(topic, partition)

    async def seek(self, topic: str, partition: int, offset: int) -> None:
        await asyncio.to_thread(self.sync.seek, topic, partition, offset)

    async def seek_to_time(self, when: When, partitions: Iterable[TopicPartition] | None = None) -> None:
        await asyncio.to_thread(self.sync.seek_to_time, when, partitions)

    async def seek_to_beginning(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        await asyncio.to_thread(self.sync.seek_to_beginning, partitions)

    async def seek_to_end(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        await asyncio.to_thread(self.sync.seek_to_end, partitions)

    def pause(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        self.sync.pause(partitions)

    def resume(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        self.sync.resume(partitions)

    def paused(self) -> set[TopicPartition]:
        return self.sync.paused()

    @property
    def closed(self) -> bool:
        return self.sync.closed

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncConsumer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class AsyncEventLog:
    """The ``EventLog`` interface for asyncio code (wraps a synchronous one, available as ``sync``)."""

    def __init__(self, log: EventLog) -> None:
        self.sync = log

    async def create_topic(
        self, name: str, partitions: int = 1, config: dict[str, str] | None = None
    ) -> TopicDescription:
        return await asyncio.to_thread(self.sync.create_topic, name, partitions, config)

    async def delete_topic(self, name: str) -> None:
        await asyncio.to_thread(self.sync.delete_topic, name)

    async def list_topics(self) -> list[str]:
        return await asyncio.to_thread(self.sync.list_topics)

    async def describe_topic(self, name: str) -> TopicDescription:
        return await asyncio.to_thread(self.sync.describe_topic, name)

    def publish(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        headers: Iterable[Header] | dict[str, bytes | str | None] | None = None,
        partition: int | None = None,
        *,
        timestamp: When | None = None,
    ) -> asyncio.Future[Published]:
        """Queue the message and return at once; await the result for its position."""
        return bridge(self.sync.publish(topic, value, key, headers, partition, timestamp=timestamp))

    def publish_many(
        self, topic: str, values: Iterable[Any], key: Any = None, partition: int | None = None
    ) -> asyncio.Future[list[Published]]:
        return bridge(self.sync.publish_many(topic, values, key, partition))

    async def flush(self, timeout: float | None = None) -> None:
        await asyncio.to_thread(self.sync.flush, timeout)

    def subscribe(
        self,
        topics: str | Iterable[str],
        group: str | None = None,
        *,
        auto_commit: bool = True,
        start: StartPosition = "earliest",
        value_codec: CodecSpec | None = None,
        key_codec: CodecSpec | None = None,
    ) -> AsyncConsumer:
        return AsyncConsumer(
            self.sync.subscribe(
                topics,
                group,
                auto_commit=auto_commit,
                start=start,
                value_codec=value_codec,
                key_codec=key_codec,
            )
        )

    async def replay(
        self, topic: str, since: datetime | int | None = None, until: datetime | int | None = None
    ) -> AsyncIterator[Message]:
        iterator = self.sync.replay(topic, since, until)
        while True:
            chunk = await asyncio.to_thread(_take, iterator, REPLAY_CHUNK)
            for message in chunk:
                yield message
            if len(chunk) < REPLAY_CHUNK:
                return

    async def lag(self, group: str) -> dict[TopicPartition, int]:
        return await asyncio.to_thread(self.sync.lag, group)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncEventLog:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _take(iterator: Iterator[Message], count: int) -> list[Message]:
    out = []
    for message in iterator:
        out.append(message)
        if len(out) >= count:
            break
    return out


__all__ = ["AsyncConsumer", "AsyncEventLog", "bridge"]
