"""How DescribeConfigs reports each topic config's type. Validation lives with the log (storage)."""

from __future__ import annotations

from typing import Final

# DescribeConfigs config_type values (Kafka's ConfigType enum).
BOOLEAN: Final = 1
STRING: Final = 2
INT: Final = 3
LONG: Final = 5
DOUBLE: Final = 6
LIST: Final = 7

CONFIG_TYPES: Final[dict[str, int]] = {
    "cleanup.policy": LIST,
    "retention.ms": LONG,
    "retention.bytes": LONG,
    "segment.bytes": INT,
    "segment.ms": LONG,
    "segment.index.bytes": INT,
    "index.interval.bytes": INT,
    "max.message.bytes": INT,
    "message.timestamp.type": STRING,
    "flush.messages": LONG,
    "flush.ms": LONG,
    "min.insync.replicas": INT,
    "compression.type": STRING,
    "delete.retention.ms": LONG,
    "min.cleanable.dirty.ratio": DOUBLE,
    "message.timestamp.before.max.ms": LONG,
    "message.timestamp.after.max.ms": LONG,
    "riel.append.only": BOOLEAN,
}
