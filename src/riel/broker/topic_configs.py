"""Which topic configs Riel accepts, their types (as DescribeConfigs reports them) and validation."""

from __future__ import annotations

from typing import Final

from riel.config import TOPIC_CONFIG_DEFAULTS
from riel.errors import ErrorCode, KafkaApiError

# DescribeConfigs config_type values (Kafka's ConfigType enum).
BOOLEAN: Final = 1
STRING: Final = 2
INT: Final = 3
LONG: Final = 5
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
}

_CHOICES: Final[dict[str, frozenset[str]]] = {
    "cleanup.policy": frozenset({"delete", "compact", "compact,delete", "delete,compact"}),
    "message.timestamp.type": frozenset({"CreateTime", "LogAppendTime"}),
    "compression.type": frozenset({"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"}),
}

_MINIMUM: Final[dict[str, int]] = {
    "segment.bytes": 14,
    "max.message.bytes": 0,
    "index.interval.bytes": 0,
    "segment.ms": 1,
    "min.insync.replicas": 1,
}


def validate_topic_configs(configs: dict[str, str | None]) -> dict[str, str]:
    """Check names and values; raise ``KafkaApiError(INVALID_CONFIG)`` naming the offending entry."""
    valid: dict[str, str] = {}
    for name, value in configs.items():
        if name not in TOPIC_CONFIG_DEFAULTS:
            raise KafkaApiError(ErrorCode.INVALID_CONFIG, f"unknown topic config {name!r}")
        if value is None:
            raise KafkaApiError(ErrorCode.INVALID_CONFIG, f"config {name!r} needs a value")
        kind = CONFIG_TYPES[name]
        if kind in (INT, LONG):
            try:
                number = int(value)
            except ValueError:
                raise KafkaApiError(
                    ErrorCode.INVALID_CONFIG, f"config {name!r} must be an integer, got {value!r}"
                ) from None
            if number < _MINIMUM.get(name, -1):
                raise KafkaApiError(
                    ErrorCode.INVALID_CONFIG,
                    f"config {name!r} must be at least {_MINIMUM.get(name, -1)}, got {value!r}",
                )
        choices = _CHOICES.get(name)
        if choices is not None and value not in choices:
            raise KafkaApiError(
                ErrorCode.INVALID_CONFIG, f"config {name!r} must be one of {sorted(choices)}, got {value!r}"
            )
        valid[name] = value
    return valid
