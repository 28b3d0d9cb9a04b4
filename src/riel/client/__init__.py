"""Riel's Python SDK: one interface (``EventLog``), embedded or remote.

``riel.open(path)`` runs the log inside this process on a data directory (``":memory:"`` for a
throw-away one); ``riel.connect("host:9092")`` talks to ``riel serve`` or any Kafka cluster through
confluent-kafka. ``riel.open_async``/``riel.connect_async`` give the same with ``async`` methods.
"""

from __future__ import annotations

from riel.client.aio import AsyncConsumer, AsyncEventLog
from riel.client.api import (
    Consumer,
    EventLog,
    Header,
    Message,
    Published,
    PublishFuture,
    TopicDescription,
    TopicPartition,
)
from riel.client.codecs import Codec, CodecError, CodecSpec, make_codec

__all__ = [
    "AsyncConsumer",
    "AsyncEventLog",
    "Codec",
    "CodecError",
    "CodecSpec",
    "Consumer",
    "EventLog",
    "Header",
    "Message",
    "PublishFuture",
    "Published",
    "TopicDescription",
    "TopicPartition",
    "connect",
    "connect_async",
    "make_codec",
    "open",
    "open_async",
]


def open(path: str, **settings: object) -> EventLog:
    """The embedded event log on ``path`` (``":memory:"``: a throw-away one). See ``EmbeddedLog``."""
    from riel.client.embedded import EmbeddedLog

    return EmbeddedLog(path, **settings)  # type: ignore[arg-type]


def connect(bootstrap: str, **settings: object) -> EventLog:
    """An event log on ``riel serve`` or any Kafka cluster (through confluent-kafka). See ``RemoteLog``."""
    from riel.client.remote import RemoteLog

    return RemoteLog(bootstrap, **settings)  # type: ignore[arg-type]


def open_async(path: str, **settings: object) -> AsyncEventLog:
    """``open`` for asyncio code: ``async with riel.open_async(path) as log: ...``."""
    return AsyncEventLog(open(path, **settings))


def connect_async(bootstrap: str, **settings: object) -> AsyncEventLog:
    """``connect`` for asyncio code."""
    return AsyncEventLog(connect(bootstrap, **settings))
