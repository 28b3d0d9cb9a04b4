"""The one interface of Riel's Python SDK, shared by the embedded log and the remote (Kafka client) one.

Application code is written against ``EventLog`` and ``Consumer``; ``riel.open(path)`` gives an embedded
implementation, ``riel.connect("host:9092")`` a remote one, and the same code runs on both.

Choices where Kafka's clients differ or are silent (documented in the README too):

- ``publish`` returns at once with a ``PublishFuture``; its result is a ``Published`` (topic, partition,
  offset, timestamp) once the message is acknowledged: durable under the embedded flush policy, or
  acked by the broker (acks=all) in remote mode.
- ``subscribe`` starts a group member from the group's committed offsets; partitions without one start at
  ``start`` ("earliest" by default, unlike Kafka's "latest": an event log is usually read from the start,
  and a late subscriber in the examples must see what was published before it joined).
- Partitions are named by ``(topic, partition)`` tuples everywhere.
- Timestamps are integers in milliseconds since the epoch (as in Kafka); ``Message.time`` is the same
  instant as an aware ``datetime``. Wherever a time is accepted, a ``datetime`` or milliseconds will do.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, NamedTuple, Protocol, Self, TypeVar

from riel.client.codecs import CodecSpec

Header = tuple[str, bytes | None]
TopicPartition = tuple[str, int]
StartPosition = Literal["earliest", "latest"]
When = datetime | int  # a datetime, or milliseconds since the epoch

T_co = TypeVar("T_co", covariant=True)


class Message(NamedTuple):
    """One message as a consumer sees it. A plain tuple underneath (cheap to make by the million)."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # milliseconds since the epoch
    key: Any
    value: Any
    headers: tuple[Header, ...]  # (name, value) pairs in order; () when there are none

    @property
    def time(self) -> datetime:
        """``timestamp`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp / 1000, tz=UTC)


class Published(NamedTuple):
    """Where an acknowledged message landed."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # milliseconds since the epoch (the log's time for LogAppendTime topics)


@dataclass(frozen=True)
class TopicDescription:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)  # explicitly set configs only


class PublishFuture(Protocol[T_co]):
    """The subset of ``concurrent.futures.Future`` that publish results offer (embedded futures are
    lighter objects with these methods)."""

    def result(self, timeout: float | None = None) -> T_co: ...

    def exception(self, timeout: float | None = None) -> BaseException | None: ...

    def done(self) -> bool: ...

    def add_done_callback(self, fn: Callable[[Any], object]) -> None: ...


def to_millis(when: When) -> int:
    """Milliseconds since the epoch of a datetime (naive ones are taken as local time) or of an int."""
    if isinstance(when, datetime):
        return int(when.timestamp() * 1000)
    if isinstance(when, bool) or not isinstance(when, int):
        raise TypeError(f"expected a datetime or milliseconds since the epoch, got {when!r}")
    return when


def normalise_headers(
    headers: Iterable[tuple[str, bytes | str | None]] | dict[str, Any] | None,
) -> list[Header] | None:
    """Headers as a list of (str, bytes | None) pairs (str values as UTF-8); None when there are none.
    Both backends take headers as pairs or a dict through this."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, dict) else headers
    out: list[Header] = []
    for name, value in pairs:
        if not isinstance(name, str):
            raise TypeError(f"header names are str, got {type(name).__name__}")
        if isinstance(value, str):
            value = value.encode()
        elif value is not None and not isinstance(value, bytes):
            value = bytes(value)
        out.append((name, value))
    return out


def subscription_topics(topics: str | Iterable[str], start: str) -> list[str]:
    """The topic list of a ``subscribe`` call, checking its arguments the same way for both backends."""
    names = [topics] if isinstance(topics, str) else list(topics)
    if not names:
        raise ValueError("subscribe needs at least one topic")
    if start not in ("earliest", "latest"):
        raise ValueError(f"start must be 'earliest' or 'latest', not {start!r}")
    return names


class Consumer(abc.ABC):
    """A subscription: iterate it to receive messages. Not thread-safe: use one consumer per thread.

    Iterating blocks until a message arrives and ends only when the consumer is closed; use
    ``messages(idle_timeout=...)`` or ``poll(timeout)`` to stop waiting.
    """

    @abc.abstractmethod
    def poll(self, timeout: float | None = None) -> Message | None:
        """The next message, waiting up to ``timeout`` seconds (None: forever); None if none came."""

    def has_buffered(self) -> bool:
        """Whether ``poll(0)`` would return a message already in memory, without any I/O (the async
        wrapper uses it to stay on the event loop). Conservative: False when unsure."""
        return False

    def __iter__(self) -> Iterator[Message]:
        while not self.closed:
            message = self.poll(1.0)
            if message is not None:
                yield message

    def messages(
        self, idle_timeout: float | None = None, max_messages: int | None = None
    ) -> Iterator[Message]:
        """Messages until none arrived for ``idle_timeout`` seconds or ``max_messages`` were given."""
        count = 0
        while max_messages is None or count < max_messages:
            message = self.poll(idle_timeout)
            if message is None:
                return
            count += 1
            yield message

    @abc.abstractmethod
    def commit(
        self, message: Message | None = None, *, offsets: dict[TopicPartition, int] | None = None
    ) -> None:
        """Commit synchronously: the position of every assigned partition (no arguments), the offset after
        ``message``, or explicit ``offsets`` (the next offset to read, as in Kafka). Needs a group."""

    @abc.abstractmethod
    def committed(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int | None]:
        """The group's committed offsets of ``partitions`` (default: the assignment)."""

    @abc.abstractmethod
    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer currently reads."""

    @abc.abstractmethod
    def position(self, topic: str, partition: int) -> int:
        """The offset of the next message this consumer will return from that partition."""

    @abc.abstractmethod
    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Read that partition from ``offset`` next (it must be assigned)."""

    @abc.abstractmethod
    def seek_to_time(self, when: When, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Move each partition (default: the assignment) to its first message at or after ``when``,
        or to its end if there is none."""

    @abc.abstractmethod
    def seek_to_beginning(self, partitions: Iterable[TopicPartition] | None = None) -> None: ...

    @abc.abstractmethod
    def seek_to_end(self, partitions: Iterable[TopicPartition] | None = None) -> None: ...

    @abc.abstractmethod
    def pause(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Stop returning messages from ``partitions`` (default: all assigned) until ``resume``."""

    @abc.abstractmethod
    def resume(self, partitions: Iterable[TopicPartition] | None = None) -> None: ...

    @abc.abstractmethod
    def paused(self) -> set[TopicPartition]: ...

    @property
    @abc.abstractmethod
    def closed(self) -> bool: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Leave the group (committing first when auto-commit is on). Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class EventLog(abc.ABC):
    """Topics, publishing, subscriptions, replay and lag: embedded (``riel.open``) or remote
    (``riel.connect``). Thread-safe: share one per process."""

    # ---- topics
    @abc.abstractmethod
    def create_topic(
        self, name: str, partitions: int = 1, config: dict[str, str] | None = None
    ) -> TopicDescription:
        """Create a topic; ``TopicExistsError`` if it exists."""

    @abc.abstractmethod
    def delete_topic(self, name: str) -> None:
        """Delete a topic and its messages; ``UnknownTopicError`` if there is none."""

    @abc.abstractmethod
    def list_topics(self) -> list[str]:
        """Topic names, sorted (internal topics of a Kafka cluster excluded)."""

    @abc.abstractmethod
    def describe_topic(self, name: str) -> TopicDescription:
        """Partition count and explicitly set configs; ``UnknownTopicError`` if there is none."""

    # ---- publishing
    @abc.abstractmethod
    def publish(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        headers: Iterable[Header] | dict[str, bytes | str | None] | None = None,
        partition: int | None = None,
        *,
        timestamp: When | None = None,
    ) -> PublishFuture[Published]:
        """Queue one message and return at once. A missing topic is created (1 partition) as Kafka's
        auto.create.topics.enable does. Keyed messages go to murmur2(key) % partitions (Kafka's rule)."""

    @abc.abstractmethod
    def publish_many(
        self,
        topic: str,
        values: Iterable[Any],
        key: Any = None,
        partition: int | None = None,
    ) -> PublishFuture[list[Published]]:
        """Queue many messages (same key/partition rules) with one future for all of them."""

    @abc.abstractmethod
    def flush(self, timeout: float | None = None) -> None:
        """Wait until every message published so far is acknowledged; ``TimeoutError`` otherwise."""

    # ---- consuming
    @abc.abstractmethod
    def subscribe(
        self,
        topics: str | Iterable[str],
        group: str | None = None,
        *,
        auto_commit: bool = True,
        start: StartPosition = "earliest",
        value_codec: CodecSpec | None = None,
        key_codec: CodecSpec | None = None,
    ) -> Consumer:
        """A consumer of ``topics``. With a ``group``, the group's members split the partitions and
        offsets are committed under its name; without one, every partition is read and nothing is
        committed. Codecs default to the log's (see ``riel.client.codecs``)."""

    @abc.abstractmethod
    def replay(
        self, topic: str, since: datetime | int | None = None, until: datetime | int | None = None
    ) -> Iterator[Message]:
        """Every message of ``topic`` from ``since`` up to ``until`` (exclusive), then the iterator ends.

        A ``datetime`` is a time (``since``: the first message at or after it; ``until``: stop before
        the first message at or after it); an ``int`` is an offset, applied to every partition; None
        means the beginning, and for ``until`` the end as it was when ``replay`` was called. Partitions
        are merged in timestamp order (ties by partition). Uses no group and commits nothing."""

    @abc.abstractmethod
    def lag(self, group: str) -> dict[TopicPartition, int]:
        """Per partition the group has committed on, in (topic, partition) order: messages it has yet
        to read (end - committed)."""

    # ---- lifecycle
    @abc.abstractmethod
    def close(self) -> None:
        """Flush, close every consumer made here, and release resources. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
