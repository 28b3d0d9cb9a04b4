"""Riel: an event log for Python people, embedded or as a Kafka-wire-compatible server.

import riel
with riel.open("./events") as log:          # embedded, like sqlite3 (or riel.connect("host:9092"))
    log.publish("orders", b"2 coffees")
    for message in log.subscribe("orders", group="kitchen"):
        ...
"""

from riel.client import (
    AsyncConsumer,
    AsyncEventLog,
    Consumer,
    EventLog,
    Message,
    Published,
    TopicDescription,
    connect,
    connect_async,
    open,
    open_async,
)
from riel.errors import (
    DataDirLockedError,
    KafkaApiError,
    PublishError,
    RielError,
    StorageError,
    TopicExistsError,
    UnknownTopicError,
)

__version__ = "0.1.0"

__all__ = [
    "AsyncConsumer",
    "AsyncEventLog",
    "Consumer",
    "DataDirLockedError",
    "EventLog",
    "KafkaApiError",
    "Message",
    "PublishError",
    "Published",
    "RielError",
    "StorageError",
    "TopicDescription",
    "TopicExistsError",
    "UnknownTopicError",
    "__version__",
    "connect",
    "connect_async",
    "open",
    "open_async",
]
