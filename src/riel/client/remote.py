"""The remote backend of the SDK: ``EventLog`` over the Kafka protocol, with confluent-kafka underneath.

``connect("host:9092")`` talks to ``riel serve`` or to any Kafka cluster. librdkafka does the protocol
work (batching, idempotence, group membership, fetch sessions); this module maps the SDK's interface
onto it and fills the gaps librdkafka leaves to applications:

- Publishing: one producer per log, shared by every thread. A daemon thread polls it so that delivery
  reports resolve the futures ``publish`` returns without the application ever calling ``poll``. A full
  local queue is waited out, never turned into a dropped message.
- Consuming: positions are tracked here, from the messages actually handed out and from seeks, so
  ``position`` and ``commit()`` mean "the next message this consumer returns" even though librdkafka
  prefetches further. With auto-commit on, offsets are stored for librdkafka's periodic commit only
  when a message is handed out (``enable.auto.offset.store`` is off), so a periodic commit never
  covers a message the application has not seen.
- Settings: librdkafka properties are given as keywords (``linger_ms=5``) or as a dict of dotted names
  (``config={"linger.ms": 5}``). Each client gets only the properties of its kind: the producer gets
  global and producer properties, consumers global and consumer properties, the admin client global
  ones. librdkafka would otherwise log a CONFWARN for every misplaced property on every consumer.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from datetime import datetime
from typing import Any, Final

try:
    from confluent_kafka import (
        TIMESTAMP_NOT_AVAILABLE,
        ConsumerGroupTopicPartitions,
        IsolationLevel,
        KafkaError,
        KafkaException,
        Producer,
    )
    from confluent_kafka import Consumer as KafkaConsumer
    from confluent_kafka import Message as KafkaMessage
    from confluent_kafka import TopicPartition as KafkaTopicPartition
    from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, just not marked so
        AdminClient,
        ConfigResource,
        ConfigSource,
        NewTopic,
        OffsetSpec,
        ResourceType,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("riel's remote mode needs confluent-kafka: pip install 'confluent-kafka>=2.6'") from exc

from riel.client.api import (
    Consumer,
    EventLog,
    Header,
    Message,
    Published,
    StartPosition,
    TopicDescription,
    TopicPartition,
    When,
    normalise_headers,
    subscription_topics,
    to_millis,
)
from riel.client.codecs import Codec, CodecSpec, encode_optional, make_codec
from riel.errors import (
    ErrorCode,
    GroupRequiredError,
    KafkaApiError,
    NotAssignedError,
    PublishError,
    TopicExistsError,
    UnknownTopicError,
)

__all__ = ["RemoteConsumer", "RemoteLog", "connect"]

_log = logging.getLogger(__name__)

# librdkafka properties by client kind (the C/P column of librdkafka's CONFIGURATION.md). Anything not
# listed is a global property and goes to every client.
_PRODUCER_ONLY: Final = frozenset(
    {
        "transactional.id", "transaction.timeout.ms", "enable.idempotence", "enable.gapless.guarantee",
        "queue.buffering.max.messages", "queue.buffering.max.kbytes", "queue.buffering.max.ms",
        "linger.ms", "message.send.max.retries", "retries", "queue.buffering.backpressure.threshold",
        "compression.codec", "compression.type", "compression.level", "batch.num.messages", "batch.size",
        "delivery.report.only.error", "dr_cb", "dr_msg_cb", "on_delivery", "sticky.partitioning.linger.ms",
        "request.required.acks", "acks", "request.timeout.ms", "message.timeout.ms", "delivery.timeout.ms",
        "queuing.strategy", "produce.offset.report", "partitioner", "partitioner_cb", "msg_order_cmp",
    }
)  # fmt: skip
_CONSUMER_ONLY: Final = frozenset(
    {
        "group.id", "group.instance.id", "partition.assignment.strategy", "session.timeout.ms",
        "heartbeat.interval.ms", "group.protocol.type", "group.protocol", "group.remote.assignor",
        "coordinator.query.interval.ms", "max.poll.interval.ms", "enable.auto.commit",
        "auto.commit.interval.ms", "enable.auto.offset.store", "queued.min.messages",
        "queued.max.messages.kbytes", "fetch.wait.max.ms", "fetch.queue.backoff.ms",
        "fetch.message.max.bytes", "max.partition.fetch.bytes", "fetch.max.bytes", "fetch.min.bytes",
        "fetch.error.backoff.ms", "offset.store.method", "isolation.level", "consume_cb", "rebalance_cb",
        "offset_commit_cb", "on_commit", "enable.partition.eof", "check.crcs", "auto.commit.enable",
        "auto.offset.reset", "offset.store.path", "offset.store.sync.interval.ms",
        "consume.callback.max.messages",
    }
)  # fmt: skip
# Property names that really contain underscores, so ``log_level=7`` is not turned into "log.level".
_UNDERSCORED: Final = {
    name.replace("_", "."): name
    for name in (
        "log_level", "error_cb", "throttle_cb", "stats_cb", "oauth_cb", "on_delivery", "on_commit",
        "enabled_events", "dr_cb", "dr_msg_cb", "consume_cb", "rebalance_cb", "offset_commit_cb",
        "partitioner_cb", "msg_order_cmp", "ssl.certificate.verify_cb",
    )
}  # fmt: skip

_PRODUCER_DEFAULTS: Final[dict[str, Any]] = {
    "acks": "all",
    "enable.idempotence": True,
    # Java-compatible murmur2 for keyed messages (librdkafka's default is CRC32), so a key lands on the
    # partition the Java client, kafka-python and Riel's embedded log pick.
    "partitioner": "murmur2_random",
    "linger.ms": 5,
}

# librdkafka errors of its own (negative codes) that have a Kafka counterpart.
_LOCAL_ERRORS: Final = {
    KafkaError._MSG_TIMED_OUT: ErrorCode.REQUEST_TIMED_OUT,
    KafkaError._TIMED_OUT: ErrorCode.REQUEST_TIMED_OUT,
    KafkaError._TIMED_OUT_QUEUE: ErrorCode.REQUEST_TIMED_OUT,
    KafkaError._UNKNOWN_TOPIC: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    KafkaError._UNKNOWN_PARTITION: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    KafkaError._TRANSPORT: ErrorCode.NETWORK_EXCEPTION,
    KafkaError._ALL_BROKERS_DOWN: ErrorCode.NETWORK_EXCEPTION,
    KafkaError._UNSUPPORTED_FEATURE: ErrorCode.UNSUPPORTED_VERSION,
    KafkaError._INVALID_ARG: ErrorCode.INVALID_REQUEST,
}

# OffsetSpec's constructors are untyped; the specs are immutable, so two shared ones do.
_EARLIEST: Final[OffsetSpec] = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
_LATEST: Final[OffsetSpec] = OffsetSpec.latest()  # type: ignore[no-untyped-call]

_POLL_SLICE_S: Final = 0.2  # longest single librdkafka poll, so a blocking poll stays interruptible
_REPLAY_BUFFER: Final = 2_000  # messages buffered per partition before replay pauses its fetching


def connect(bootstrap: str, **kwargs: Any) -> RemoteLog:
    """A ``RemoteLog`` on the cluster at ``bootstrap`` ("host:port[,host:port...]")."""
    return RemoteLog(bootstrap, **kwargs)


# ------------------------------------------------------------------------------------------- helpers


def _error_code(err: KafkaError) -> ErrorCode:
    code = err.code()
    local = _LOCAL_ERRORS.get(code)
    if local is not None:
        return local
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.UNKNOWN_SERVER_ERROR


def _kafka_error(exc: KafkaException) -> KafkaError:
    if exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return KafkaError(KafkaError._FAIL, str(exc))


def _api_error(err: KafkaError, context: str) -> KafkaApiError:
    return KafkaApiError(_error_code(err), f"{context}: {err.str()} ({err.name()})")


def _settings_by_client(
    config: dict[str, Any] | None, settings: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(producer, consumer, admin) properties; keywords override same-named ``config`` entries."""
    merged = dict(config or {})
    for keyword, value in settings.items():
        dotted = keyword.replace("_", ".")
        merged[_UNDERSCORED.get(dotted, dotted)] = value
    producer = {k: v for k, v in merged.items() if k not in _CONSUMER_ONLY}
    consumer = {k: v for k, v in merged.items() if k not in _PRODUCER_ONLY}
    admin = {k: v for k, v in merged.items() if k not in _PRODUCER_ONLY and k not in _CONSUMER_ONLY}
    return producer, consumer, admin


def _log_client_error(err: KafkaError) -> None:
    # librdkafka reports connection trouble here and recovers by itself; failures that matter reach the
    # application through delivery reports, poll() and request results.
    _log.warning("kafka client: %s (%s)", err.str(), err.name())


def _decode_optional(codec: Codec, data: bytes | None) -> Any:
    return None if data is None else codec.decode(data)


def _to_message(raw: KafkaMessage, key_codec: Codec, value_codec: Codec) -> Message:
    ts_type, ts = raw.timestamp()
    headers = raw.headers()
    return Message(
        raw.topic() or "",
        _int(raw.partition()),
        _int(raw.offset()),
        ts if ts_type != TIMESTAMP_NOT_AVAILABLE else -1,
        _decode_optional(key_codec, raw.key()),
        _decode_optional(value_codec, raw.value()),
        tuple(normalise_headers(headers) or ()),
    )


def _int(value: int | None) -> int:
    return -1 if value is None else value


def _tp(raw: KafkaMessage | KafkaTopicPartition) -> TopicPartition:
    if isinstance(raw, KafkaTopicPartition):
        return (raw.topic, raw.partition)
    return (raw.topic() or "", _int(raw.partition()))


# ----------------------------------------------------------------------------------------------- log


class RemoteLog(EventLog):
    """An ``EventLog`` on a Kafka-protocol broker (``riel serve`` or a Kafka cluster).

    ``settings`` are librdkafka properties as keywords, dots written as underscores (``linger_ms=5`` is
    ``"linger.ms": 5``); ``config`` gives dotted names as they are. Each goes to the clients it concerns
    (see the module docstring). Producer defaults: ``acks=all``, ``enable.idempotence=true``,
    ``partitioner=murmur2_random``, ``linger.ms=5``; all can be overridden. Settings the SDK derives
    from ``subscribe``'s arguments (group.id, enable.auto.commit, auto.offset.reset, ...) win over
    the ones given here.
    """

    request_timeout: float = 30.0  # seconds for admin requests, metadata and offset look-ups

    def __init__(
        self,
        bootstrap: str,
        *,
        value_codec: CodecSpec | None = None,
        key_codec: CodecSpec | None = None,
        config: dict[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        self.bootstrap = bootstrap
        self.value_codec = make_codec(value_codec)
        self.key_codec = make_codec(key_codec)
        producer_conf, self._consumer_conf, admin_conf = _settings_by_client(config, settings)
        self._producer = Producer(
            {
                **_PRODUCER_DEFAULTS,
                "error_cb": _log_client_error,
                **producer_conf,
                "bootstrap.servers": bootstrap,
            }
        )
        admin_conf = {"error_cb": _log_client_error, **admin_conf, "bootstrap.servers": bootstrap}
        self._admin = AdminClient(admin_conf)
        self._lock = threading.Lock()
        self._consumers: set[RemoteConsumer] = set()
        self._replay_consumers: set[KafkaConsumer] = set()
        self._closed = False
        self._stopping = threading.Event()
        self._poller = threading.Thread(
            target=self._serve_delivery_reports, name="riel-producer-poll", daemon=True
        )
        self._poller.start()

    # ---------------------------------------------------------------------------------------- topics

    def create_topic(
        self, name: str, partitions: int = 1, config: dict[str, str] | None = None
    ) -> TopicDescription:
        self._check_open()
        try:
            # -1: the broker's default replication factor (CreateTopics v4+); older brokers refuse it.
            self._create(name, partitions, -1, config)
        except KafkaApiError as exc:
            if exc.code not in (ErrorCode.INVALID_REPLICATION_FACTOR, ErrorCode.UNSUPPORTED_VERSION):
                raise
            self._create(name, partitions, 1, config)
        return TopicDescription(name, partitions, dict(config or {}))

    def _create(self, name: str, partitions: int, replication: int, config: dict[str, str] | None) -> None:
        new = NewTopic(
            name, num_partitions=partitions, replication_factor=replication, config=dict(config or {})
        )
        (future,) = self._admin.create_topics(
            [new], request_timeout=self.request_timeout, operation_timeout=self.request_timeout
        ).values()
        try:
            self._await(future, f"create topic {name!r}")
        except KafkaApiError as exc:
            if exc.code == ErrorCode.TOPIC_ALREADY_EXISTS:
                raise TopicExistsError(name) from None
            raise

    def delete_topic(self, name: str) -> None:
        self._check_open()
        (future,) = self._admin.delete_topics(
            [name], request_timeout=self.request_timeout, operation_timeout=self.request_timeout
        ).values()
        try:
            self._await(future, f"delete topic {name!r}")
        except KafkaApiError as exc:
            if exc.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                raise UnknownTopicError(name) from None
            raise

    def list_topics(self) -> list[str]:
        self._check_open()
        return sorted(name for name in self._topic_partitions() if not name.startswith("__"))

    def describe_topic(self, name: str) -> TopicDescription:
        self._check_open()
        partitions = self._partitions_of(name)
        (future,) = self._admin.describe_configs(
            [ConfigResource(ResourceType.TOPIC, name)], request_timeout=self.request_timeout
        ).values()
        entries = self._await(future, f"describe configs of topic {name!r}")
        explicit = ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        config = {
            key: entry.value
            for key, entry in entries.items()
            if entry.source == explicit and entry.value is not None
        }
        return TopicDescription(name, len(partitions), config)

    def _topic_partitions(self) -> dict[str, list[int]]:
        """Every topic's partition ids, from a metadata request for all topics.

        All topics rather than just the wanted ones: a Metadata request naming a missing topic would
        make a broker with auto.create.topics.enable (riel serve included) create it."""
        try:
            metadata = self._admin.list_topics(timeout=self.request_timeout)
        except KafkaException as exc:
            raise _api_error(_kafka_error(exc), "list topics") from None
        return {
            name: sorted(topic.partitions)
            for name, topic in metadata.topics.items()
            if topic.error is None or topic.error.code() == KafkaError.LEADER_NOT_AVAILABLE
        }

    def _partitions_of(self, topic: str) -> list[int]:
        partitions = self._topic_partitions().get(topic)
        if partitions is None:
            raise UnknownTopicError(topic)
        return partitions

    def _await(self, future: Future[Any], what: str) -> Any:
        try:
            return future.result(timeout=self.request_timeout + 5)
        except KafkaException as exc:
            raise _api_error(_kafka_error(exc), what) from None
        except FutureTimeoutError:
            raise TimeoutError(
                f"{what}: no answer from {self.bootstrap} within {self.request_timeout}s"
            ) from None

    def _list_offsets(self, specs: dict[TopicPartition, OffsetSpec]) -> dict[TopicPartition, int]:
        """ListOffsets for many partitions in one round trip per leader; -1 where a time has no message."""
        if not specs:
            return {}
        futures = self._admin.list_offsets(
            {KafkaTopicPartition(t, p): spec for (t, p), spec in specs.items()},
            # As consumers read (librdkafka's default isolation): "latest" is where they stop.
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=self.request_timeout,
        )
        return {
            _tp(tp): self._await(f, f"list offsets of {tp.topic}[{tp.partition}]").offset
            for tp, f in futures.items()
        }

    # ------------------------------------------------------------------------------------ publishing

    def publish(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        headers: Iterable[Header] | dict[str, bytes | str | None] | None = None,
        partition: int | None = None,
        *,
        timestamp: When | None = None,
    ) -> Future[Published]:
        self._check_open()
        value_bytes = encode_optional(self.value_codec, value)
        key_bytes = encode_optional(self.key_codec, key)
        header_list = normalise_headers(headers)
        ts = 0 if timestamp is None else to_millis(timestamp)  # 0: librdkafka stamps it now
        future: Future[Published] = Future()
        future.set_running_or_notify_cancel()  # RUNNING: cancel() can no longer race the delivery report

        def delivered(err: KafkaError | None, msg: KafkaMessage) -> None:
            if err is not None:
                future.set_exception(_publish_error(err, topic))
            else:
                future.set_result(_published(msg))

        self._produce(topic, value_bytes, key_bytes, header_list, partition, ts, delivered, future)
        return future

    def publish_many(
        self,
        topic: str,
        values: Iterable[Any],
        key: Any = None,
        partition: int | None = None,
    ) -> Future[list[Published]]:
        self._check_open()
        # Encode everything first: a value the codec refuses raises here, before anything is queued.
        encoded = [encode_optional(self.value_codec, value) for value in values]
        key_bytes = encode_optional(self.key_codec, key)
        future: Future[list[Published]] = Future()
        future.set_running_or_notify_cancel()
        if not encoded:
            future.set_result([])
            return future
        results: list[Published | None] = [None] * len(encoded)
        errors: dict[int, KafkaError] = {}
        remaining = [len(encoded)]
        lock = threading.Lock()

        def settle() -> None:
            # Called once every message has its delivery report, so a done future means nothing of
            # this batch is still in flight.
            if errors:
                index = min(errors)
                err = errors[index]
                future.set_exception(
                    PublishError(
                        _error_code(err),
                        f"{len(errors)} of {len(encoded)} messages to {topic!r} failed; "
                        f"first (#{index}): {err.str()} ({err.name()})",
                    )
                )
            else:
                future.set_result([r for r in results if r is not None])

        def reporter(index: int) -> Callable[[KafkaError | None, KafkaMessage], None]:
            def delivered(err: KafkaError | None, msg: KafkaMessage) -> None:
                with lock:
                    if err is not None:
                        errors[index] = err
                    else:
                        results[index] = _published(msg)
                    remaining[0] -= 1
                    last = remaining[0] == 0
                if last:
                    settle()

            return delivered

        for index, value_bytes in enumerate(encoded):
            self._produce(topic, value_bytes, key_bytes, None, partition, 0, reporter(index), None)
        return future

    def _produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: list[Header] | None,
        partition: int | None,
        timestamp: int,
        on_delivery: Callable[[KafkaError | None, KafkaMessage], None],
        future: Future[Published] | None,
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    partition=-1 if partition is None else partition,
                    on_delivery=on_delivery,
                    timestamp=timestamp,
                    headers=headers,  # type: ignore[arg-type]  # list[tuple[str, bytes | None]] is fine
                )
                return
            except BufferError:
                # The local queue is full: wait for deliveries to make room rather than drop the message.
                self._producer.poll(0.05)
            except KafkaException as exc:
                # Refused before queueing (unknown partition, message too large...): report it the way a
                # failed delivery is reported, so callers handle both in one place.
                err = _kafka_error(exc)
                if future is not None:
                    future.set_exception(_publish_error(err, topic))
                    return
                raise _publish_error(err, topic) from None

    def _serve_delivery_reports(self) -> None:
        while not self._stopping.is_set():
            try:
                self._producer.poll(0.1)
            except Exception:  # a bug in one callback must not stop delivery reports for everyone else
                _log.exception("error in a delivery report callback")

    def flush(self, timeout: float | None = None) -> None:
        self._check_open()
        left = self._producer.flush(-1 if timeout is None else timeout)
        if left:
            raise TimeoutError(f"{left} messages still unacknowledged after {timeout}s")

    # ------------------------------------------------------------------------------------- consuming

    def subscribe(
        self,
        topics: str | Iterable[str],
        group: str | None = None,
        *,
        auto_commit: bool = True,
        start: StartPosition = "earliest",
        value_codec: CodecSpec | None = None,
        key_codec: CodecSpec | None = None,
    ) -> RemoteConsumer:
        self._check_open()
        names = subscription_topics(topics, start)
        consumer = RemoteConsumer(
            self,
            names,
            group,
            auto_commit=auto_commit,
            start=start,
            key_codec=self.key_codec if key_codec is None else make_codec(key_codec),
            value_codec=self.value_codec if value_codec is None else make_codec(value_codec),
        )
        with self._lock:
            self._consumers.add(consumer)
        return consumer

    def _kafka_consumer(self, group: str | None, overrides: dict[str, Any]) -> KafkaConsumer:
        return KafkaConsumer(
            {
                "error_cb": _log_client_error,
                **self._consumer_conf,
                "bootstrap.servers": self.bootstrap,
                # librdkafka wants a group.id even for assign-only consumers; a fresh one is never joined
                # (no subscribe) and never committed to.
                "group.id": group if group is not None else f"riel-no-group-{uuid.uuid4().hex}",
                **overrides,
            }
        )

    def _forget(self, consumer: RemoteConsumer) -> None:
        with self._lock:
            self._consumers.discard(consumer)

    def replay(
        self, topic: str, since: datetime | int | None = None, until: datetime | int | None = None
    ) -> Iterator[Message]:
        self._check_open()
        partitions = self._partitions_of(topic)
        tps = [(topic, p) for p in partitions]
        ends = self._list_offsets({tp: _LATEST for tp in tps})
        starts = self._replay_bound(tps, since, ends) if since is not None else self._earliest(tps)
        stops = self._replay_bound(tps, until, ends) if until is not None else ends
        # Never past the end as of now: replay is a finite read, not a subscription.
        bounds = {tp: (starts[tp], min(stops[tp], ends[tp])) for tp in tps}
        return self._replay({tp: b for tp, b in bounds.items() if b[0] < b[1]})

    def _earliest(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return self._list_offsets({tp: _EARLIEST for tp in tps})

    def _replay_bound(
        self, tps: list[TopicPartition], bound: datetime | int, ends: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """Per partition the offset a since/until bound names: for a time, the first message at or after
        it (the end where no message is that late); an offset applies to every partition."""
        if isinstance(bound, datetime):
            found = self._list_offsets({tp: OffsetSpec.for_timestamp(to_millis(bound)) for tp in tps})
            return {tp: found[tp] if found[tp] >= 0 else ends[tp] for tp in tps}
        if isinstance(bound, bool) or not isinstance(bound, int):
            raise TypeError(f"expected a datetime, an offset or None, got {bound!r}")
        return dict.fromkeys(tps, max(bound, 0))

    def _replay(self, bounds: dict[TopicPartition, tuple[int, int]]) -> Iterator[Message]:
        # A generator of its own, so the bounds above are taken when replay() is called, not when the
        # iteration starts.
        if not bounds:
            return
        consumer = self._kafka_consumer(
            None,
            {
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                # EOF events end partitions whose last offsets are not messages (transaction markers,
                # compacted away) instead of waiting for offsets that never come.
                "enable.partition.eof": True,
            },
        )
        with self._lock:
            self._replay_consumers.add(consumer)
        try:
            consumer.assign([KafkaTopicPartition(t, p, start) for (t, p), (start, _) in bounds.items()])
            yield from _merge_partitions(
                consumer, bounds, self.key_codec, self.value_codec, self.request_timeout
            )
        finally:
            with self._lock:
                self._replay_consumers.discard(consumer)
            consumer.close()

    def lag(self, group: str) -> dict[TopicPartition, int]:
        self._check_open()
        (future,) = self._admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=self.request_timeout
        ).values()
        result = self._await(future, f"committed offsets of group {group!r}")
        committed = {_tp(tp): tp.offset for tp in result.topic_partitions or [] if tp.offset >= 0}
        ends = self._list_offsets({tp: _LATEST for tp in committed})
        return {tp: max(0, ends[tp] - offset) for tp, offset in sorted(committed.items())}

    # ------------------------------------------------------------------------------------- lifecycle

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this RemoteLog is closed")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            consumers = list(self._consumers)
            replays = list(self._replay_consumers)
        for consumer in consumers:
            try:
                consumer.close()
            except Exception:  # closing the others and the producer matters more
                _log.exception("error closing a consumer")
        for raw in replays:
            try:
                raw.close()
            except Exception:
                _log.exception("error closing a replay consumer")
        try:
            # Unbounded: librdkafka's message.timeout.ms bounds it, and every future gets resolved.
            self._producer.flush()
        finally:
            self._stopping.set()
            self._poller.join()
            self._producer.poll(0)  # reports that arrived after the poll thread's last round
            close = getattr(self._producer, "close", None)  # Producer.close is new in confluent-kafka 2.x
            if close is not None:
                close()
            # The admin client has no close(): drop it now rather than whenever this object is collected,
            # since an idle handle keeps reconnecting (and logging) in the background while it lives.
            del self._admin


def _published(msg: KafkaMessage) -> Published:
    ts_type, ts = msg.timestamp()
    return Published(
        msg.topic() or "",
        _int(msg.partition()),
        _int(msg.offset()),
        ts if ts_type != TIMESTAMP_NOT_AVAILABLE else -1,
    )


def _publish_error(err: KafkaError, topic: str) -> PublishError:
    return PublishError(_error_code(err), f"publish to {topic!r} failed: {err.str()} ({err.name()})")


def _merge_partitions(
    consumer: KafkaConsumer,
    bounds: dict[TopicPartition, tuple[int, int]],
    key_codec: Codec,
    value_codec: Codec,
    idle_timeout: float,
) -> Iterator[Message]:
    """Messages of every partition up to its stop offset, merged in (timestamp, partition) order.

    A message is yielded only once every partition still being read has a message buffered, so nothing
    earlier can turn up later (timestamps within one partition are taken as given, i.e. per-partition
    order is kept even where a producer set out-of-order timestamps)."""
    buffers: dict[TopicPartition, deque[Message]] = {tp: deque() for tp in bounds}
    reading = set(bounds)
    paused: set[TopicPartition] = set()
    heads: list[tuple[int, int, str]] = []  # (timestamp, partition, topic) of each non-empty buffer's head
    starving = len(reading)  # partitions still being read whose buffer is empty: nothing can be yielded
    last_progress = time.monotonic()

    def finish(tp: TopicPartition) -> None:
        nonlocal starving
        if tp in reading:
            reading.discard(tp)
            starving -= 0 if buffers[tp] else 1
        if tp not in paused:
            consumer.pause([KafkaTopicPartition(*tp)])  # nothing more is wanted from it
            paused.add(tp)

    while reading or heads:
        if heads and not starving:
            _, partition, topic = heapq.heappop(heads)
            tp = (topic, partition)
            buffer = buffers[tp]
            message = buffer.popleft()
            if buffer:
                heapq.heappush(heads, (buffer[0].timestamp, partition, topic))
            elif tp in reading:
                starving += 1
            if tp in paused and tp in reading and len(buffer) <= _REPLAY_BUFFER // 2:
                # librdkafka resumes from the message after the last one it handed out (the pause
                # dropped whatever it had prefetched), so nothing is skipped or repeated.
                consumer.resume([KafkaTopicPartition(*tp)])
                paused.discard(tp)
            yield message
            continue
        raw = consumer.poll(_POLL_SLICE_S)
        if raw is None:
            if time.monotonic() - last_progress > idle_timeout:
                raise TimeoutError(f"replay: nothing received for {idle_timeout}s from {sorted(reading)}")
            continue
        last_progress = time.monotonic()
        tp = _tp(raw)
        err = raw.error()
        offset = _int(raw.offset())
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                if tp in reading and offset >= bounds[tp][1]:
                    finish(tp)
                continue
            raise _api_error(err, f"replay of {tp[0]}[{tp[1]}]")
        if tp not in reading:
            continue
        stop = bounds[tp][1]
        if offset >= stop:
            finish(tp)
            continue
        message = _to_message(raw, key_codec, value_codec)
        buffer = buffers[tp]
        if not buffer:
            heapq.heappush(heads, (message.timestamp, message.partition, message.topic))
            starving -= 1
        buffer.append(message)
        if offset + 1 >= stop:
            finish(tp)
        elif len(buffer) >= _REPLAY_BUFFER and tp not in paused:
            # Bounded memory: a partition far ahead of the others waits until they catch up.
            consumer.pause([KafkaTopicPartition(*tp)])
            paused.add(tp)


# ------------------------------------------------------------------------------------------ consumer


class RemoteConsumer(Consumer):
    """A subscription through a confluent-kafka consumer. Not thread-safe, like every ``Consumer``.

    With a group, librdkafka joins it and the group's members split the partitions; without one, every
    partition of the topics is assigned from ``start`` and nothing is ever committed.
    """

    assignment_timeout: float = 30.0  # how long seek & co. wait for a fresh member's first assignment

    def __init__(
        self,
        log: RemoteLog,
        topics: list[str],
        group: str | None,
        *,
        auto_commit: bool,
        start: StartPosition,
        key_codec: Codec,
        value_codec: Codec,
    ) -> None:
        self._log = log
        self.topics = topics
        self.group = group
        self._auto_commit = auto_commit and group is not None
        self._start = start
        self._key_codec = key_codec
        self._value_codec = value_codec
        self._positions: dict[TopicPartition, int] = {}  # next offset to hand out, per partition
        self._paused: set[TopicPartition] = set()
        self._pending: deque[KafkaMessage] = deque()  # polled while waiting for an assignment
        self._assigned_once = group is None
        self._closed = False
        if group is None:
            # Resolve the start offsets now, so positions are known before the first message.
            tps = [(topic, p) for topic in topics for p in log._partitions_of(topic)]
            spec = _EARLIEST if start == "earliest" else _LATEST
            starts = log._list_offsets(dict.fromkeys(tps, spec))
            self._consumer = log._kafka_consumer(
                None,
                {"enable.auto.commit": False, "enable.auto.offset.store": False, "auto.offset.reset": start},
            )
            self._consumer.assign([KafkaTopicPartition(t, p, starts[(t, p)]) for t, p in tps])
            self._positions.update(starts)
        else:
            self._consumer = log._kafka_consumer(
                group,
                {
                    "enable.auto.commit": auto_commit,
                    # Stored (and so auto-committed) only when handed out: see _hand_out.
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": start,
                    "enable.partition.eof": False,
                },
            )
            self._consumer.subscribe(
                topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
            )

    # ------------------------------------------------------------------------------------ rebalances

    def _on_assign(self, consumer: KafkaConsumer, partitions: list[KafkaTopicPartition]) -> None:
        self._assigned_once = True

    def _on_revoke(self, consumer: KafkaConsumer, partitions: list[KafkaTopicPartition]) -> None:
        # A partition that comes back later starts from the group's committed offset, unpaused (as in
        # Kafka's Java client); prefetched messages of revoked partitions belong to their next owner.
        gone = {_tp(tp) for tp in partitions}
        unpause = [KafkaTopicPartition(*tp) for tp in gone & self._paused]
        if unpause:
            # Say so to librdkafka too, whose own pause flag could otherwise outlive the assignment.
            try:
                consumer.resume(unpause)
            except KafkaException as exc:
                _log.debug("resuming revoked partitions: %s", exc)
        for tp in gone:
            self._positions.pop(tp, None)
            self._paused.discard(tp)
        self._pending = deque(m for m in self._pending if _tp(m) not in gone)

    # --------------------------------------------------------------------------------------- reading

    def poll(self, timeout: float | None = None) -> Message | None:
        self._check_open()
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            if self._pending:
                raw: KafkaMessage | None = self._pending.popleft()
            else:
                left = _POLL_SLICE_S if deadline is None else max(0.0, deadline - time.monotonic())
                raw = self._consumer.poll(min(_POLL_SLICE_S, left))
            if raw is not None:
                message = self._hand_out(raw)
                if message is not None:
                    return message
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def _hand_out(self, raw: KafkaMessage) -> Message | None:
        """The SDK message for ``raw``, or None for events and messages that must not be handed out."""
        err = raw.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                return None
            if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART and self.group is not None:
                # A subscribed topic that does not exist (yet): librdkafka picks it up once created.
                _log.debug("consumer of %s: %s", self.topics, err.str())
                return None
            raise _api_error(err, f"consume {raw.topic()}[{raw.partition()}]")
        tp = _tp(raw)
        offset = _int(raw.offset())
        # Advance before decoding: a message its codec cannot decode raises once, then is skipped.
        self._positions[tp] = offset + 1
        if self._auto_commit:
            self._store(tp, offset + 1)
        return _to_message(raw, self._key_codec, self._value_codec)

    def _store(self, tp: TopicPartition, offset: int) -> None:
        try:
            self._consumer.store_offsets(offsets=[KafkaTopicPartition(tp[0], tp[1], offset)])
        except KafkaException as exc:  # e.g. revoked meanwhile: the next owner commits for it
            _log.debug("cannot store offset %d for %s: %s", offset, tp, exc)

    # ------------------------------------------------------------------------------------ committing

    def _require_group(self, what: str) -> str:
        if self.group is None:
            raise GroupRequiredError(what)
        return self.group

    def commit(
        self, message: Message | None = None, *, offsets: dict[TopicPartition, int] | None = None
    ) -> None:
        self._check_open()
        self._require_group("commit")
        if message is not None and offsets is not None:
            raise ValueError("commit takes a message or offsets, not both")
        if message is not None:
            offsets = {(message.topic, message.partition): message.offset + 1}
        elif offsets is None:
            assigned = self.assignment()
            offsets = {tp: pos for tp, pos in self._positions.items() if tp in assigned}
        if not offsets:
            return
        try:
            results = self._consumer.commit(
                offsets=[KafkaTopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
            )
        except KafkaException as exc:
            raise _api_error(_kafka_error(exc), f"commit for group {self.group!r}") from None
        for tp in results or []:
            if tp.error is not None:
                raise _api_error(tp.error, f"commit of {tp.topic}[{tp.partition}] for group {self.group!r}")

    def committed(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int | None]:
        self._check_open()
        self._require_group("committed")
        tps = self._partitions_or_assignment(partitions, require_assigned=False)
        if not tps:
            return {}
        try:
            found = self._consumer.committed(
                [KafkaTopicPartition(t, p) for t, p in tps], timeout=self._log.request_timeout
            )
        except KafkaException as exc:
            raise _api_error(_kafka_error(exc), f"committed offsets of group {self.group!r}") from None
        return {_tp(tp): tp.offset if tp.offset >= 0 else None for tp in found}

    # -------------------------------------------------------------------------------------- position

    def assignment(self) -> set[TopicPartition]:
        self._check_open()
        return {_tp(tp) for tp in self._consumer.assignment()}

    def position(self, topic: str, partition: int) -> int:
        self._check_open()
        tp = (topic, partition)
        self._require_assigned([tp])
        if tp in self._positions:
            return self._positions[tp]
        # Nothing handed out or sought yet: where the fetch starts, as librdkafka will resolve it.
        if self.group is not None:
            committed = self.committed([tp])[tp]
            if committed is not None:
                return committed
        spec = _EARLIEST if self._start == "earliest" else _LATEST
        return self._log._list_offsets({tp: spec})[tp]

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self._check_open()
        self._seek({(topic, partition): offset})

    def seek_to_time(self, when: When, partitions: Iterable[TopicPartition] | None = None) -> None:
        self._check_open()
        ms = to_millis(when)
        tps = self._partitions_or_assignment(partitions)
        found = self._log._list_offsets({tp: OffsetSpec.for_timestamp(ms) for tp in tps})
        missing = [tp for tp in tps if found[tp] < 0]
        ends = self._log._list_offsets({tp: _LATEST for tp in missing})
        self._seek({tp: found[tp] if found[tp] >= 0 else ends[tp] for tp in tps})

    def seek_to_beginning(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        self._check_open()
        tps = self._partitions_or_assignment(partitions)
        self._seek(self._log._list_offsets({tp: _EARLIEST for tp in tps}))

    def seek_to_end(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        self._check_open()
        tps = self._partitions_or_assignment(partitions)
        self._seek(self._log._list_offsets({tp: _LATEST for tp in tps}))

    def _seek(self, offsets: dict[TopicPartition, int]) -> None:
        """Seek to absolute offsets (so positions stay known) once the partitions are assigned."""
        self._require_assigned(list(offsets))
        for tp, offset in offsets.items():
            self._seek_one(tp, offset)
            self._positions[tp] = offset
            if self._auto_commit:
                self._store(tp, offset)  # as in Kafka, auto-commit commits the position, sought or not
        self._pending = deque(m for m in self._pending if _tp(m) not in offsets)

    def _seek_one(self, tp: TopicPartition, offset: int) -> None:
        # librdkafka refuses (_STATE) to seek a partition whose fetcher has not started yet, e.g. while
        # a new assignment waits for its committed offsets: give it a moment.
        deadline = time.monotonic() + self.assignment_timeout
        while True:
            try:
                self._consumer.seek(KafkaTopicPartition(tp[0], tp[1], offset))
                return
            except KafkaException as exc:
                err = _kafka_error(exc)
                if err.code() != KafkaError._STATE or time.monotonic() >= deadline:
                    raise _api_error(err, f"seek {tp[0]}[{tp[1]}] to {offset}") from None
            self._poll_into_pending(0.05)

    # ---------------------------------------------------------------------------------- pause/resume

    def pause(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        self._check_open()
        tps = self._partitions_or_assignment(partitions)
        self._consumer.pause([KafkaTopicPartition(t, p) for t, p in tps])
        self._paused.update(tps)

    def resume(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        self._check_open()
        tps = self._partitions_or_assignment(partitions)
        self._consumer.resume([KafkaTopicPartition(t, p) for t, p in tps])
        self._paused.difference_update(tps)

    def paused(self) -> set[TopicPartition]:
        self._check_open()
        return set(self._paused)

    # ------------------------------------------------------------------------------------ assignment

    def _partitions_or_assignment(
        self, partitions: Iterable[TopicPartition] | None, *, require_assigned: bool = True
    ) -> list[TopicPartition]:
        if partitions is None:
            self._wait_for_assignment()
            return sorted(self.assignment())
        tps = list(partitions)
        if require_assigned:
            self._require_assigned(tps)
        return tps

    def _require_assigned(self, tps: list[TopicPartition]) -> None:
        if not set(tps) <= self.assignment():
            self._wait_for_assignment()
        missing = sorted(set(tps) - self.assignment())
        if missing:
            raise NotAssignedError(
                f"{missing} not assigned to this consumer (assigned: {sorted(self.assignment())}); "
                "a group member can only seek, pause or ask the position of its own partitions"
            )

    def _wait_for_assignment(self) -> None:
        """Until a group member's first assignment arrives (it comes through poll callbacks); messages
        polled meanwhile are kept for the next ``poll``."""
        deadline = time.monotonic() + self.assignment_timeout
        while not self._assigned_once and time.monotonic() < deadline:
            self._poll_into_pending(0.1)
        if not self._assigned_once:
            raise TimeoutError(
                f"no partitions assigned by group {self.group!r} within {self.assignment_timeout}s"
            )

    def _poll_into_pending(self, timeout: float) -> None:
        raw = self._consumer.poll(timeout)
        if raw is not None:
            self._pending.append(raw)

    # ------------------------------------------------------------------------------------- lifecycle

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this consumer is closed")

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        try:
            if self._auto_commit:
                try:
                    self.commit()
                except (KafkaApiError, ValueError) as exc:  # e.g. mid-rebalance: close anyway
                    _log.warning("final commit of group %r failed: %s", self.group, exc)
        finally:
            self._closed = True
            self._log._forget(self)
            self._consumer.close()
