"""The topic configs the storage layer acts on, parsed once from Kafka's string form.

Topic configs are stored as Kafka's strings (what DescribeConfigs shows); ``LogConfig`` is the typed
view a partition log uses on the hot path. Configs Riel accepts but storage does not act on
(flush.*, compression.type, min.insync.replicas) are validated and stored all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from riel.config import TOPIC_CONFIG_DEFAULTS
from riel.errors import ErrorCode, KafkaApiError

INT32_MAX: Final = 2**31 - 1
INT64_MAX: Final = 2**63 - 1

# name -> (minimum, maximum) for integer configs, Kafka's bounds.
_INTEGER_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    "retention.ms": (-1, INT64_MAX),
    "retention.bytes": (-(2**63), INT64_MAX),
    "segment.bytes": (14, INT32_MAX),
    "segment.ms": (1, INT64_MAX),
    "segment.index.bytes": (4, INT32_MAX),
    "index.interval.bytes": (0, INT32_MAX),
    "max.message.bytes": (0, INT32_MAX),
    "flush.messages": (1, INT64_MAX),
    "flush.ms": (0, INT64_MAX),
    "min.insync.replicas": (1, INT32_MAX),
    "delete.retention.ms": (0, INT64_MAX),
    "message.timestamp.before.max.ms": (0, INT64_MAX),
    "message.timestamp.after.max.ms": (0, INT64_MAX),
}
# name -> (minimum, maximum) for decimal configs.
_DECIMAL_BOUNDS: Final[dict[str, tuple[float, float]]] = {"min.cleanable.dirty.ratio": (0.0, 1.0)}
_CHOICES: Final[dict[str, frozenset[str]]] = {
    "cleanup.policy": frozenset({"delete", "compact", "compact,delete", "delete,compact"}),
    "message.timestamp.type": frozenset({"CreateTime", "LogAppendTime"}),
    "compression.type": frozenset({"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"}),
    "riel.append.only": frozenset({"true", "false"}),
}

APPEND_ONLY: Final = "riel.append.only"


def check_append_only_change(name: str, before: dict[str, str], after: dict[str, str]) -> None:
    """Refuse a config change (``before``/``after``: effective configs) that would let records of an
    append-only topic be removed: turning append-only off, or asking for compaction.
    ``KafkaApiError(POLICY_VIOLATION)`` saying so."""
    if before.get(APPEND_ONLY) == "true" and after.get(APPEND_ONLY) != "true":
        raise KafkaApiError(
            ErrorCode.POLICY_VIOLATION,
            f"topic {name!r} is append-only (riel.append.only=true); that cannot be turned off",
        )
    if after.get(APPEND_ONLY) == "true" and "compact" in after.get("cleanup.policy", ""):
        raise KafkaApiError(
            ErrorCode.POLICY_VIOLATION,
            f"topic {name!r} is append-only: cleanup.policy cannot include compact "
            "(compaction removes records)",
        )


def validate_topic_configs(configs: dict[str, str]) -> dict[str, str]:
    """A copy of ``configs`` if every name is a topic config Riel knows and every value parses;
    ``KafkaApiError(INVALID_CONFIG)`` naming the first offending entry otherwise."""
    for name, value in configs.items():
        if name not in TOPIC_CONFIG_DEFAULTS:
            raise KafkaApiError(ErrorCode.INVALID_CONFIG, f"unknown topic config {name!r}")
        if not isinstance(value, str):
            raise KafkaApiError(
                ErrorCode.INVALID_CONFIG, f"config {name!r} needs a string value, got {value!r}"
            )
        bounds: tuple[float, float] | None = _INTEGER_BOUNDS.get(name)
        if bounds is not None:
            _check_number(name, value, int, "an integer", bounds)
        bounds = _DECIMAL_BOUNDS.get(name)
        if bounds is not None:
            _check_number(name, value, float, "a number", bounds)
        choices = _CHOICES.get(name)
        if choices is not None and value not in choices:
            raise KafkaApiError(
                ErrorCode.INVALID_CONFIG, f"config {name!r} must be one of {sorted(choices)}, got {value!r}"
            )
    return dict(configs)


def _check_number(
    name: str, value: str, parse: type[int] | type[float], kind: str, bounds: tuple[float, float]
) -> None:
    try:
        number = parse(value)
    except ValueError:
        raise KafkaApiError(
            ErrorCode.INVALID_CONFIG, f"config {name!r} must be {kind}, got {value!r}"
        ) from None
    if not bounds[0] <= number <= bounds[1]:
        raise KafkaApiError(
            ErrorCode.INVALID_CONFIG, f"config {name!r} must be in [{bounds[0]}, {bounds[1]}], got {value}"
        )


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Typed storage settings of one topic (from its effective configs)."""

    segment_bytes: int = 1073741824
    segment_ms: int = 604800000
    index_interval_bytes: int = 4096
    max_index_entries: int = 10485760 // 8
    max_message_bytes: int = 1048588
    log_append_time: bool = False
    retention_ms: int = 604800000  # -1: no time limit
    retention_bytes: int = -1  # < 0: no size limit
    delete_policy: bool = True  # cleanup.policy includes "delete": retention applies
    append_only: bool = False  # riel.append.only: nothing is ever removed
    compact: bool = False  # cleanup.policy includes "compact": keep the latest record per key
    delete_retention_ms: int = 86400000  # how long a compacted topic keeps a tombstone
    min_cleanable_dirty_ratio: float = 0.5
    timestamp_before_max_ms: int = INT64_MAX  # CreateTime bounds: how far in the past ...
    timestamp_after_max_ms: int = INT64_MAX  # ... and in the future a record's timestamp may be
    # Derived: append must decode records to check them (compact: keys; CreateTime bounds: timestamps).
    # Precomputed so topics without such a policy pay one attribute test per append.
    needs_record_checks: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bounded = self.timestamp_before_max_ms < INT64_MAX or self.timestamp_after_max_ms < INT64_MAX
        object.__setattr__(
            self, "needs_record_checks", self.compact or (bounded and not self.log_append_time)
        )

    @classmethod
    def from_configs(cls, effective: dict[str, str]) -> LogConfig:
        """Parse effective configs (defaults overlaid with the topic's); missing keys use Kafka's defaults."""
        merged = {**TOPIC_CONFIG_DEFAULTS, **effective}
        return cls(
            segment_bytes=int(merged["segment.bytes"]),
            segment_ms=int(merged["segment.ms"]),
            index_interval_bytes=int(merged["index.interval.bytes"]),
            max_index_entries=max(1, int(merged["segment.index.bytes"]) // 8),
            max_message_bytes=int(merged["max.message.bytes"]),
            log_append_time=merged["message.timestamp.type"] == "LogAppendTime",
            retention_ms=int(merged["retention.ms"]),
            retention_bytes=int(merged["retention.bytes"]),
            delete_policy="delete" in merged["cleanup.policy"],
            append_only=merged[APPEND_ONLY] == "true",
            compact="compact" in merged["cleanup.policy"],
            delete_retention_ms=int(merged["delete.retention.ms"]),
            min_cleanable_dirty_ratio=float(merged["min.cleanable.dirty.ratio"]),
            timestamp_before_max_ms=int(merged["message.timestamp.before.max.ms"]),
            timestamp_after_max_ms=int(merged["message.timestamp.after.max.ms"]),
        )
