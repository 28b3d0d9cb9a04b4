"""Broker and topic configuration: typed, with Kafka's names where Kafka has one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

DEFAULT_DATA_DIR: Final = Path.home() / ".local" / "share" / "riel"

# Topic-level configs Riel understands, with their defaults (Kafka's names and defaults).
TOPIC_CONFIG_DEFAULTS: Final[dict[str, str]] = {
    "cleanup.policy": "delete",
    "retention.ms": "604800000",
    "retention.bytes": "-1",
    "segment.bytes": "1073741824",
    "segment.ms": "604800000",
    "segment.index.bytes": "10485760",
    "index.interval.bytes": "4096",
    "max.message.bytes": "1048588",
    "message.timestamp.type": "CreateTime",
    "flush.messages": "9223372036854775807",
    "flush.ms": "9223372036854775807",
    "min.insync.replicas": "1",
    "compression.type": "producer",
    # Compaction (cleanup.policy=compact): tombstones are kept this long after their timestamp; a
    # partition is cleaned once this share of its sealed bytes is not yet compacted.
    "delete.retention.ms": "86400000",
    "min.cleanable.dirty.ratio": "0.5",
    # CreateTime bounds (Kafka 3.6+, KIP-937): how far a record's timestamp may lie before / after the
    # broker's clock; Kafka 3.x's defaults (no bound).
    "message.timestamp.before.max.ms": "9223372036854775807",
    "message.timestamp.after.max.ms": "9223372036854775807",
    # Riel's own: "true" makes a topic's records undeletable (no DeleteRecords, retention or topic
    # deletion, and the setting cannot be weakened once on). See storage/log_config.py.
    "riel.append.only": "false",
}


@dataclass(frozen=True)
class FlushPolicy:
    """When appended data is fsync'ed, and so what an acknowledgement promises.

    ``always``: fsync before a produce is acknowledged (an acked message survives power loss).
    ``interval``: fsync once ``messages`` have accumulated or ``ms`` have passed, whichever is first; an
    acked message survives a crash of Riel (it is in the OS page cache) but the last interval may be lost
    on power loss. ``os``: never fsync on our own; the OS writes back when it likes.
    """

    name: str = "always"
    messages: int = 1
    ms: int = 0

    @classmethod
    def parse(cls, spec: str) -> FlushPolicy:
        """``always``, ``os``, or ``interval[:MESSAGES[:MS]]`` such as ``interval:10000:1000``."""
        parts = spec.split(":")
        if parts[0] == "always":
            return cls("always", 1, 0)
        if parts[0] == "os":
            return cls("os", 0, 0)
        if parts[0] == "interval":
            messages = int(parts[1]) if len(parts) > 1 else 10_000
            ms = int(parts[2]) if len(parts) > 2 else 1_000
            return cls("interval", messages, ms)
        raise ValueError(f"unknown flush policy {spec!r}: use always, os or interval[:MESSAGES[:MS]]")


@dataclass(frozen=True)
class GroupConfig:
    """Consumer-group coordinator settings, with Kafka's broker config names in the comments.

    ``initial_rebalance_delay_ms`` differs from Kafka's default (3000 ms): Kafka waits that long for
    more members before the first rebalance of an empty group; Riel's default is small so that a lone
    consumer gets its first message well within a second of ``subscribe()``.
    """

    initial_rebalance_delay_ms: int = 100  # group.initial.rebalance.delay.ms
    min_session_timeout_ms: int = 6_000  # group.min.session.timeout.ms
    max_session_timeout_ms: int = 1_800_000  # group.max.session.timeout.ms
    offsets_retention_minutes: int = 7 * 24 * 60  # offsets.retention.minutes
    offsets_retention_check_interval_ms: int = 600_000  # offsets.retention.check.interval.ms
    offset_metadata_max_bytes: int = 4096  # offset.metadata.max.bytes

    @property
    def offsets_retention_ms(self) -> int:
        return self.offsets_retention_minutes * 60_000


@dataclass(frozen=True)
class ClientQuota:
    """Byte-rate quotas of one client id (Kafka's ``producer_byte_rate`` / ``consumer_byte_rate``, bytes
    per second); None: no limit."""

    producer_byte_rate: int | None = None
    consumer_byte_rate: int | None = None

    @classmethod
    def parse(cls, spec: str) -> tuple[str, ClientQuota]:
        """``CLIENT_ID:producer=N,consumer=M`` (either part may be left out) -> (client id, quota)."""
        client_id, sep, rates = spec.rpartition(":")
        values: dict[str, int] = {}
        for item in rates.split(",") if sep else []:
            key, eq, number = item.strip().partition("=")
            if key not in ("producer", "consumer") or not eq or not number.isdigit() or int(number) <= 0:
                break
            values[key] = int(number)
        else:
            if values:
                return client_id, cls(values.get("producer"), values.get("consumer"))
        raise ValueError(f"bad quota {spec!r}: expected CLIENT_ID:producer=N,consumer=M (bytes per second)")


@dataclass(frozen=True)
class Limits:
    """What one connection or client may take (``None``: unlimited)."""

    max_connections: int | None = None  # max.connections
    max_connections_per_ip: int | None = None  # max.connections.per.ip
    connections_max_idle_ms: int = 600_000  # connections.max.idle.ms
    # Riel's own: a frame whose first bytes arrived must be complete within this (slow-loris).
    frame_deadline_ms: int = 30_000
    default_quota: ClientQuota = field(default_factory=ClientQuota)
    client_quotas: dict[str, ClientQuota] = field(default_factory=dict)
    quota_window_num: int = 11  # quota.window.num
    quota_window_size_ms: int = 1_000  # quota.window.size.seconds, in ms

    def quota_of(self, client_id: str | None) -> ClientQuota:
        """A client id's own quota, each rate falling back to the default."""
        own = self.client_quotas.get(client_id or "")
        if own is None:
            return self.default_quota
        return ClientQuota(
            own.producer_byte_rate or self.default_quota.producer_byte_rate,
            own.consumer_byte_rate or self.default_quota.consumer_byte_rate,
        )


SECURITY_PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


@dataclass(frozen=True)
class Listener:
    """One Kafka listener (``listeners`` / ``advertised.listeners``): ``NAME://host:port``.

    The name is the security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL). Metadata and
    FindCoordinator answer a connection with the advertised address of the listener it came in on.
    """

    name: str
    host: str
    port: int
    advertised_host: str | None = None
    advertised_port: int | None = None

    @property
    def security_protocol(self) -> str:
        return self.name

    @property
    def sasl(self) -> bool:
        return self.name.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.name in ("SSL", "SASL_SSL")

    @property
    def advertised(self) -> tuple[str, int]:
        return (self.advertised_host or self.host, self.advertised_port or self.port)

    @classmethod
    def parse(cls, spec: str) -> Listener:
        """``NAME://host:port`` (``[::1]`` for IPv6; an empty host means every interface)."""
        name, sep, address = spec.partition("://")
        name = name.upper()
        if not sep or name not in SECURITY_PROTOCOLS:
            raise ValueError(
                f"bad listener {spec!r}: expected NAME://HOST:PORT with NAME one of "
                f"{', '.join(SECURITY_PROTOCOLS)}"
            )
        host, colon, port = address.rpartition(":")
        if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"bad listener {spec!r}: expected NAME://HOST:PORT")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return cls(name, host or "0.0.0.0", int(port))


@dataclass
class BrokerConfig:
    data_dir: Path = DEFAULT_DATA_DIR
    host: str = "127.0.0.1"
    port: int = 9092
    advertised_host: str | None = None
    advertised_port: int | None = None
    node_id: int = 0
    cluster_id: str = "riel-cluster"
    num_partitions: int = 1
    # Each partition holds open files; a cap keeps one CreateTopics from exhausting descriptors.
    max_partitions_per_topic: int = 10_000
    auto_create_topics: bool = True
    flush: FlushPolicy = field(default_factory=FlushPolicy)
    max_request_bytes: int = 100 * 1024 * 1024  # socket.request.max.bytes
    retention_check_interval_ms: int = 300_000  # log.retention.check.interval.ms
    log_cleaner_backoff_ms: int = 15_000  # log.cleaner.backoff.ms
    transaction_max_timeout_ms: int = 900_000  # transaction.max.timeout.ms
    transactional_id_expiration_ms: int = 604_800_000  # transactional.id.expiration.ms (7 days)
    # The HTTP listener: web console, /metrics and /health. Port 0 picks a free port.
    http_enabled: bool = True
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    console_enabled: bool = True  # False: only /metrics and /health are served
    topic_defaults: dict[str, str] = field(default_factory=lambda: dict(TOPIC_CONFIG_DEFAULTS))
    groups: GroupConfig = field(default_factory=lambda: GroupConfig())
    # Listeners; empty means one PLAINTEXT listener on host:port (advertised_host/advertised_port).
    listeners: list[Listener] = field(default_factory=list)
    # TLS for SSL / SASL_SSL listeners: server certificate chain and key (PEM); a CA file turns on
    # client certificate checking (ssl_client_auth "required" or "requested").
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_cafile: Path | None = None
    ssl_client_auth: str = "none"
    # ACLs (riel acl): off, every request is allowed; on, a request needs a matching ALLOW ACL and no
    # DENY. Super users ("User:admin") bypass the ACLs.
    authorizer_enabled: bool = False
    super_users: list[str] = field(default_factory=list)
    limits: Limits = field(default_factory=lambda: Limits())

    def effective_listeners(self) -> list[Listener]:
        if self.listeners:
            return list(self.listeners)
        return [Listener("PLAINTEXT", self.host, self.port, self.advertised_host, self.advertised_port)]
