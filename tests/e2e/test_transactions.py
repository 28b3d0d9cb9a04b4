"""Kafka transactions end to end (issue 8): transactional producers of confluent-kafka and kafka-python
against a real ``riel serve``, read back with read_committed and read_uncommitted consumers
(confluent-kafka, kafka-python, Debian's kcat).

* committed and aborted transactions of two clients, overlapping on the same partitions with plain
  records between them: read_committed sees every committed record once and no aborted one,
  read_uncommitted sees both and never a control record; both reach the end of every partition;
* the last stable offset stops read_committed at the first open transaction and moves on as they end;
  a fetch starting inside an aborted transaction still skips it; aborted transactions spanning many
  segments read back exactly, from the start and from inside each, before and after kill -9;
* send_offsets_to_transaction commits the group's offsets only with the transaction (both clients);
* consume-transform-produce with send_offsets_to_transaction (subprocess workers, random aborts with a
  rewind, kill -9 mid-run, a hanging zombie fenced by its successor): each input exactly once;
* zombie fencing between producers of one transactional.id (both clients, both directions);
* kill -9 of the broker inside an open transaction, and a transaction left open past its timeout:
  aborted by the broker in bounded time, read_committed never blocked, later records visible;
* transaction.timeout.ms above the broker's --transaction-max-timeout-ms is refused (code 50), the
  maximum itself accepted (default 900000, and as set by the flag).

Every wait is bounded; kafka-python's commit/abort (which wait without a timeout) run in a thread
joined with one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from conftest import RielServer, ServerFactory
from e2e.helpers import (
    CLIENT_TIMEOUT_MS,
    Rec,
    confluent_consumer,
    confluent_produce,
    create_topic,
    kp_admin,
    kp_consumer,
    make_messages,
    unique_topic,
)

T = TypeVar("T")

PARTITIONS = 3
OP_TIMEOUT_S = 30.0  # one transactional call (init, commit, abort, send offsets)
DEFAULT_MAX_TXN_TIMEOUT_MS = 900_000  # riel serve --transaction-max-timeout-ms default (Kafka's)
SHORT_TXN_TIMEOUT_MS = 5_000  # a transaction the broker should abort soon
ABORT_MARGIN_S = 30.0  # how long after its timeout a stale transaction may stay open at most
# Extra `riel serve` flags for every broker of this module (e.g. a faster timed-out-transaction scan).
TXN_SERVER_ARGS: tuple[str, ...] = ()
KCAT = shutil.which("kcat") or shutil.which("kafkacat")
WORKER = Path(__file__).with_name("txn_worker.py")


def txn_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def poll_until(predicate: Callable[[], bool], timeout: float, what: Callable[[], str] | str) -> float:
    """Poll until true; returns the seconds it took, fails with ``what`` after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what() if callable(what) else what}"
            )
        time.sleep(0.05)
    return time.monotonic() - start


def bounded(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run a call that may block without a timeout of its own in a daemon thread, joined with one."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, daemon=True, name=what)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"{what} did not return within {timeout}s")
    if error:
        raise error[0]
    return result[0]


# ------------------------------------------------------------------------------- transactional clients


class TxnProducer:
    """One transactional producer, the same few calls for both clients. Delivered records are kept as
    value -> (partition, offset); delivery errors as text."""

    client = ""

    def __init__(self) -> None:
        self.delivered: dict[bytes, tuple[int, int]] = {}
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def _ok(self, value: bytes, partition: int, offset: int) -> None:
        with self.lock:
            self.delivered[value] = (partition, offset)

    def _failed(self, value: bytes, err: object) -> None:
        with self.lock:
            self.errors.append(f"{value!r}: {err}")

    def init(self, timeout: float = OP_TIMEOUT_S) -> None:
        raise NotImplementedError

    def begin(self) -> None:
        raise NotImplementedError

    def send(self, topic: str, value: bytes, partition: int, key: bytes | None = None) -> None:
        raise NotImplementedError

    def flush(self, timeout: float = OP_TIMEOUT_S) -> None:
        raise NotImplementedError

    def commit(self, timeout: float = OP_TIMEOUT_S) -> None:
        raise NotImplementedError

    def abort(self, timeout: float = OP_TIMEOUT_S) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def flush_all(
        self, values: Sequence[bytes], timeout: float = OP_TIMEOUT_S
    ) -> dict[bytes, tuple[int, int]]:
        """Flush and require every one of ``values`` delivered; returns their (partition, offset)."""
        self.flush(timeout)
        with self.lock:
            missing = [v for v in values if v not in self.delivered]
            assert not missing and not self.errors, (
                f"{self.client}: {len(missing)} records undelivered, errors {self.errors[:3]}"
            )
            return {v: self.delivered[v] for v in values}

    def send_all(
        self, topic: str, values: Sequence[bytes], partitions: int = 2
    ) -> dict[bytes, tuple[int, int]]:
        """Send ``values`` round-robin over ``partitions`` and require every one delivered."""
        for i, value in enumerate(values):
            self.send(topic, value, i % partitions)
        return self.flush_all(values)


class ConfluentTxn(TxnProducer):
    client = "confluent"

    def __init__(self, bootstrap: str, transactional_id: str, **conf: Any) -> None:
        from confluent_kafka import Producer

        super().__init__()
        self.client_errors: list[Any] = []
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "transactional.id": transactional_id,
                "linger.ms": 2,
                "error_cb": self.client_errors.append,
                **conf,
            }
        )

    def init(self, timeout: float = OP_TIMEOUT_S) -> None:
        self.producer.init_transactions(timeout)

    def begin(self) -> None:
        self.producer.begin_transaction()

    def send(self, topic: str, value: bytes, partition: int, key: bytes | None = None) -> None:
        def on_delivery(err: Any, msg: Any) -> None:
            if err is None:
                self._ok(value, msg.partition(), msg.offset())
            else:
                self._failed(value, err)

        self.producer.produce(topic, value=value, key=key, partition=partition, on_delivery=on_delivery)
        self.producer.poll(0)

    def flush(self, timeout: float = OP_TIMEOUT_S) -> None:
        try:
            self.producer.flush(timeout)
        except Exception as exc:
            # After a fatal error (fenced) confluent-kafka 2.16's flush() raises the bare KafkaError, or an
            # unrelated-looking error from a callback; the error that counts comes from commit().
            self.errors.append(f"flush: {exc!r}")

    def commit(self, timeout: float = OP_TIMEOUT_S) -> None:
        self.producer.commit_transaction(timeout)

    def abort(self, timeout: float = OP_TIMEOUT_S) -> None:
        self.producer.abort_transaction(timeout)

    def close(self) -> None:
        self.flush(0)  # confluent's Producer has no close(): dropped with the object


class KafkaPythonTxn(TxnProducer):
    client = "kafka-python"

    def __init__(self, bootstrap: str, transactional_id: str, **conf: Any) -> None:
        from kafka import KafkaProducer

        super().__init__()
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            transactional_id=transactional_id,
            request_timeout_ms=CLIENT_TIMEOUT_MS,
            max_block_ms=int(OP_TIMEOUT_S * 1000),
            linger_ms=2,
            **conf,
        )

    def init(self, timeout: float = OP_TIMEOUT_S) -> None:
        bounded(self.producer.init_transactions, timeout + 5, "kafka-python init_transactions")

    def begin(self) -> None:
        self.producer.begin_transaction()

    def send(self, topic: str, value: bytes, partition: int, key: bytes | None = None) -> None:
        future = self.producer.send(topic, value=value, key=key, partition=partition)
        future.add_callback(lambda md: self._ok(value, md.partition, md.offset))
        future.add_errback(lambda exc: self._failed(value, exc))

    def flush(self, timeout: float = OP_TIMEOUT_S) -> None:
        try:
            self.producer.flush(timeout=timeout)
        except Exception as exc:  # a timeout or a fenced producer: seen through self.errors
            self.errors.append(f"flush: {exc!r}")

    def commit(self, timeout: float = OP_TIMEOUT_S) -> None:
        bounded(self.producer.commit_transaction, timeout, "kafka-python commit_transaction")

    def abort(self, timeout: float = OP_TIMEOUT_S) -> None:
        bounded(self.producer.abort_transaction, timeout, "kafka-python abort_transaction")

    def close(self) -> None:
        try:
            self.producer.close(timeout=5)
        except Exception as exc:  # a producer in a fatal state may complain; closing is all we want
            self.errors.append(f"close: {exc!r}")


def txn_producer(
    client: str, bootstrap: str, transactional_id: str, timeout_ms: int | None = None
) -> TxnProducer:
    if client == "confluent":
        conf = {} if timeout_ms is None else {"transaction.timeout.ms": timeout_ms}
        return ConfluentTxn(bootstrap, transactional_id, **conf)
    kp_conf = {} if timeout_ms is None else {"transaction_timeout_ms": timeout_ms}
    return KafkaPythonTxn(bootstrap, transactional_id, **kp_conf)


def plain_offset(bootstrap: str, topic: str, value: bytes) -> int:
    """Produce one non-transactional record (idempotent) to partition 0; its offset."""
    ((_, offset),) = confluent_produce(
        bootstrap, topic, [Rec(None, value)], partition=0, conf={"enable.idempotence": True}
    )
    return offset


def produce_plain_round_robin(bootstrap: str, topic: str, values: Sequence[bytes]) -> None:
    """Produce non-transactional records (idempotent) over partitions 0 and 1."""
    for i, value in enumerate(values):
        confluent_produce(
            bootstrap, topic, [Rec(None, value)], partition=i % 2, conf={"enable.idempotence": True}
        )


FENCING_CODES = {"_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH"}


def error_code(exc: BaseException) -> str:
    """Kafka error name of a client exception (confluent KafkaException or kafka-python error)."""
    err: Any = exc.args[0] if exc.args else None
    if hasattr(err, "name") and callable(err.name):
        return str(err.name())
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message.isupper():
        return message  # kafka-python BrokerResponseError: 'PRODUCER_FENCED'
    wrapped = re.search(
        r"\[Error (-?\d+)\]", str(exc)
    )  # kafka-python: "Unexpected error in ...: [Error 50] ..."
    if wrapped:
        from kafka.errors import for_code

        return str(for_code(int(wrapped.group(1))).message)
    return type(exc).__name__


def is_fencing_error(exc: BaseException) -> bool:
    from confluent_kafka import KafkaException
    from kafka.errors import InvalidProducerEpochError, ProducerFencedError

    if isinstance(exc, KafkaException):
        err = exc.args[0]
        return bool(err.name() in FENCING_CODES or err.fatal())
    if isinstance(exc, ProducerFencedError | InvalidProducerEpochError):
        return True
    text = str(exc)  # kafka-python: "... in an error state: ProducerFencedError ..." after a fatal error
    return any(s in text for s in ("ProducerFenced", "InvalidProducerEpoch", *FENCING_CODES))


# ------------------------------------------------------------------------------------- reading back


@dataclass
class Drained:
    records: list[Rec]
    ends: dict[int, int]  # per partition: where the consumer stood at the end (EOF offset / position)
    seconds: float

    def values(self) -> Counter[bytes | None]:
        return Counter(r.value for r in self.records)


def high_watermarks(bootstrap: str, topic: str, partitions: Sequence[int]) -> dict[int, int]:
    """Log end offsets (read_uncommitted: librdkafka's default read_committed would give the LSO)."""
    from confluent_kafka import TopicPartition

    consumer = confluent_consumer(bootstrap, **{"isolation.level": "read_uncommitted"})
    try:
        return {
            p: int(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20, cached=False)[1])
            for p in partitions
        }
    finally:
        consumer.close()


def cf_drain(
    bootstrap: str,
    topic: str,
    partitions: Sequence[int],
    isolation: str,
    *,
    targets: dict[int, int] | None = None,
    timeout: float = 60.0,
) -> Drained:
    """confluent-kafka from the beginning until every partition reported EOF at targets[p] or later
    (default: the log end now); EOF for read_committed is at the LSO, so this also proves the LSO got
    there."""
    from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

    targets = targets if targets is not None else high_watermarks(bootstrap, topic, partitions)
    consumer = confluent_consumer(bootstrap, **{"isolation.level": isolation, "fetch.wait.max.ms": 100})
    out: list[Rec] = []
    eof: dict[int, int] = {}
    start = time.monotonic()
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        while not all(eof.get(p, -1) >= targets[p] for p in partitions):
            assert time.monotonic() - start < timeout, (
                f"confluent {isolation} consumer did not reach {targets} within {timeout}s: EOF at {eof}, "
                f"{len(out)} records"
            )
            for msg in consumer.consume(num_messages=1000, timeout=0.2):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        eof[msg.partition()] = msg.offset()
                        continue
                    raise AssertionError(f"confluent consumer error: {err}")
                out.append(Rec(msg.key(), msg.value(), (), msg.partition(), msg.offset()))
        return Drained(out, eof, time.monotonic() - start)
    finally:
        consumer.close()


def kp_drain(
    bootstrap: str,
    topic: str,
    partitions: Sequence[int],
    isolation: str,
    *,
    targets: dict[int, int] | None = None,
    timeout: float = 60.0,
) -> Drained:
    """kafka-python from the beginning until its position reached targets[p] (default: log end now) on
    every partition; a position past the trailing control batch is part of the check."""
    from kafka import TopicPartition

    targets = targets if targets is not None else high_watermarks(bootstrap, topic, partitions)
    consumer = kp_consumer(bootstrap, isolation_level=isolation)
    out: list[Rec] = []
    start = time.monotonic()
    try:
        tps = {p: TopicPartition(topic, p) for p in partitions}
        consumer.assign(list(tps.values()))
        consumer.seek_to_beginning(*tps.values())
        positions: dict[int, int] = {}
        while True:
            positions = {p: consumer.position(tp, timeout_ms=10_000) for p, tp in tps.items()}
            if all(positions[p] >= targets[p] for p in partitions):
                break
            assert time.monotonic() - start < timeout, (
                f"kafka-python {isolation} consumer did not reach {targets} within {timeout}s: "
                f"positions {positions}, {len(out)} records"
            )
            for tp, records in consumer.poll(timeout_ms=200, max_records=5000).items():
                out.extend(Rec(r.key, r.value, (), tp.partition, r.offset) for r in records)
        return Drained(out, positions, time.monotonic() - start)
    finally:
        consumer.close()


def kcat_drain(bootstrap: str, topic: str, isolation: str, timeout: float = 60.0) -> Drained:
    """kcat -C -e over all partitions: exits once every partition is at its end (the LSO for
    read_committed). ``%S`` is the value size (-1 for a null value)."""
    assert KCAT is not None
    cmd = [KCAT, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q"]
    cmd += ["-X", f"isolation.level={isolation}", "-f", "%p\t%o\t%S\t%s\n"]
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"kcat {isolation} did not reach the end within {timeout}s") from exc
    assert done.returncode == 0, f"kcat exited {done.returncode}: {done.stderr.decode()[-2000:]}"
    out = []
    ends: dict[int, int] = {}
    for line in done.stdout.decode().splitlines():
        part, offset, size, value = line.split("\t", 3)
        assert int(size) == len(value.encode()), f"kcat: value size {size} for {value!r} (a null value?)"
        out.append(Rec(None, value.encode(), (), int(part), int(offset)))
        ends[int(part)] = max(ends.get(int(part), 0), int(offset) + 1)
    return Drained(out, ends, time.monotonic() - start)


def drain(client: str, bootstrap: str, topic: str, partitions: Sequence[int], isolation: str) -> Drained:
    if client == "confluent":
        return cf_drain(bootstrap, topic, partitions, isolation)
    if client == "kafka-python":
        return kp_drain(bootstrap, topic, partitions, isolation)
    return kcat_drain(bootstrap, topic, isolation)


def kp_end_offsets(bootstrap: str, topic: str, partitions: Sequence[int], isolation: str) -> dict[int, int]:
    """ListOffsets(latest) with an isolation level: the LSO for read_committed, the log end otherwise."""
    from kafka import TopicPartition

    consumer = kp_consumer(bootstrap, isolation_level=isolation)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        return {tp.partition: int(o) for tp, o in consumer.end_offsets(tps, timeout_ms=10_000).items()}
    finally:
        consumer.close()


def assert_exactly(got: Drained, want: Sequence[bytes], what: str) -> None:
    """Exactly these values, each once: no aborted record, no control record, no duplicate."""
    counts = got.values()
    wanted = set(want)
    missing = sorted(v for v in wanted if counts[v] == 0)
    dupes = sorted(repr(v) for v, n in counts.items() if n > 1)
    extra = sorted(repr(v) for v in counts if v not in wanted)
    assert not missing and not dupes and not extra and len(got.records) == len(want), (
        f"{what}: got {len(got.records)} records, want {len(want)}; missing {missing[:5]}, "
        f"duplicated {dupes[:5]}, unexpected {extra[:5]}"
    )
    offsets = Counter((r.partition, r.offset) for r in got.records)
    assert all(n == 1 for n in offsets.values()), f"{what}: an offset was delivered twice"


# ------------------------------------------------------------------------------------------ brokers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RielServer]:
    """The module's shared broker (like conftest's ``riel``, plus TXN_SERVER_ARGS)."""
    base = tmp_path_factory.mktemp("riel-txn")
    srv = RielServer(base / "data", base / "riel.log", num_partitions=PARTITIONS, extra_args=TXN_SERVER_ARGS)
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


# ------------------------------------------------- 1. committed/aborted, both clients, every consumer


@dataclass
class Mixed:
    topic: str
    committed: list[bytes]  # transactional records committed, plus the plain ones between them
    aborted: list[bytes]


# (confluent, kafka-python) outcome per round: True = commit, False = abort
ROUNDS = [(True, False), (False, True), (True, True), (False, False), (True, False), (False, True)]
PER_TXN = 9  # records per transaction, spread over the partitions


@pytest.fixture(scope="module")
def mixed(server: RielServer) -> Mixed:
    """Two transactional producers (confluent-kafka, kafka-python) whose transactions overlap on every
    partition, with plain idempotent records between their writes; committed and aborted alike."""
    topic = unique_topic("txn-mixed")
    create_topic(server.bootstrap, topic, PARTITIONS)
    cf = ConfluentTxn(server.bootstrap, txn_id("mixed-cf"))
    kp = KafkaPythonTxn(server.bootstrap, txn_id("mixed-kp"))
    committed: list[bytes] = []
    aborted: list[bytes] = []
    try:
        cf.init()
        kp.init()
        for n, (cf_commits, kp_commits) in enumerate(ROUNDS):
            cf_values = [
                f"cf-r{n}-{i}-{'commit' if cf_commits else 'abort'}".encode() for i in range(PER_TXN)
            ]
            kp_values = [
                f"kp-r{n}-{i}-{'commit' if kp_commits else 'abort'}".encode() for i in range(PER_TXN)
            ]
            plain = [f"plain-r{n}-{p}".encode() for p in range(PARTITIONS)]
            half = PER_TXN // 2
            cf.begin()
            for i, v in enumerate(cf_values[:half]):
                cf.send(topic, v, i % PARTITIONS, key=b"cf")
            cf.flush_all(cf_values[:half])
            kp.begin()
            for i, v in enumerate(kp_values[:half]):
                kp.send(topic, v, i % PARTITIONS, key=b"kp")
            kp.flush_all(kp_values[:half])
            confluent_produce(
                server.bootstrap,
                topic,
                [Rec(b"plain", v) for v in plain[:1]],
                conf={"enable.idempotence": True},
                partition=n % PARTITIONS,
            )
            for i, v in enumerate(cf_values[half:], start=half):
                cf.send(topic, v, i % PARTITIONS, key=b"cf")
            for i, v in enumerate(kp_values[half:], start=half):
                kp.send(topic, v, i % PARTITIONS, key=b"kp")
            cf.flush_all(cf_values)
            kp.flush_all(kp_values)
            # Even rounds end the confluent transaction first, odd rounds the kafka-python one.
            ends = [(cf, cf_commits), (kp, kp_commits)]
            for producer, commits in ends if n % 2 == 0 else ends[::-1]:
                if commits:
                    producer.commit()
                else:
                    producer.abort()
            for values, commits in ((cf_values, cf_commits), (kp_values, kp_commits)):
                (committed if commits else aborted).extend(values)
            committed.extend(plain[:1])
    finally:
        kp.close()
        cf.close()
    assert len(committed) == 6 * PER_TXN + len(ROUNDS) and len(aborted) == 6 * PER_TXN
    return Mixed(topic, committed, aborted)


CLIENTS = ["confluent", "kafka-python", "kcat"]


@pytest.mark.parametrize("client", CLIENTS)
def test_read_committed_sees_each_committed_record_once(
    server: RielServer, mixed: Mixed, client: str
) -> None:
    if client == "kcat" and KCAT is None:
        pytest.skip("kcat not installed (.ci/run installs it)")
    partitions = list(range(PARTITIONS))
    ends = high_watermarks(server.bootstrap, mixed.topic, partitions)
    got = drain(client, server.bootstrap, mixed.topic, partitions, "read_committed")
    assert_exactly(got, mixed.committed, f"{client} read_committed")
    # Nothing is open: the LSO is the log end, and the consumer got there (past the last marker).
    assert kp_end_offsets(server.bootstrap, mixed.topic, partitions, "read_committed") == ends
    if client != "kcat":  # kcat prints records only: its exit at -e is the check
        assert got.ends == ends, f"{client} read_committed stopped at {got.ends}, log ends {ends}"
    # Per partition, records come in offset order, and the log has room for exactly the markers.
    for p in partitions:
        offsets = [r.offset for r in got.records if r.partition == p]
        assert offsets == sorted(offsets), f"partition {p}: offsets out of order"


@pytest.mark.parametrize("client", CLIENTS)
def test_read_uncommitted_sees_committed_and_aborted_but_no_markers(
    server: RielServer, mixed: Mixed, client: str
) -> None:
    if client == "kcat" and KCAT is None:
        pytest.skip("kcat not installed (.ci/run installs it)")
    partitions = list(range(PARTITIONS))
    ends = high_watermarks(server.bootstrap, mixed.topic, partitions)
    got = drain(client, server.bootstrap, mixed.topic, partitions, "read_uncommitted")
    assert_exactly(got, mixed.committed + mixed.aborted, f"{client} read_uncommitted")
    if client != "kcat":
        assert got.ends == ends, f"{client} read_uncommitted stopped at {got.ends}, log ends {ends}"
    # Every transaction ended with one control record per partition it touched; they take offsets
    # but are never delivered: the log holds exactly records + markers.
    markers = sum(ends.values()) - len(got.records)
    assert markers == 2 * len(ROUNDS) * PARTITIONS, f"{markers} offsets not delivered (control records)"


# ------------------------------------------------------------------------- 2. the last stable offset


def test_last_stable_offset_holds_read_committed_at_first_open_transaction(server: RielServer) -> None:
    topic = unique_topic("txn-lso")
    create_topic(server.bootstrap, topic, 1)

    def produce_plain(value: bytes) -> int:
        return plain_offset(server.bootstrap, topic, value)

    cf = ConfluentTxn(server.bootstrap, txn_id("lso-cf"))
    kp = KafkaPythonTxn(server.bootstrap, txn_id("lso-kp"))
    try:
        cf.init()
        kp.init()
        assert [produce_plain(b"a0"), produce_plain(b"a1")] == [0, 1]
        cf.begin()
        cf.send(topic, b"c0", 0)
        assert cf.flush_all([b"c0"]) == {b"c0": (0, 2)}
        assert produce_plain(b"a2") == 3
        kp.begin()
        kp.send(topic, b"k0", 0)
        assert kp.flush_all([b"k0"]) == {b"k0": (0, 4)}
        cf.send(topic, b"c1", 0)
        assert cf.flush_all([b"c1"])[b"c1"] == (0, 5)
        assert produce_plain(b"a3") == 6

        assert kp_end_offsets(server.bootstrap, topic, [0], "read_uncommitted") == {0: 7}
        assert kp_end_offsets(server.bootstrap, topic, [0], "read_committed") == {0: 2}, "LSO != first open"
        got = cf_drain(server.bootstrap, topic, [0], "read_committed", targets={0: 2}, timeout=20)
        assert [r.value for r in got.records] == [b"a0", b"a1"] and got.ends == {0: 2}
        got_kp = kp_drain(server.bootstrap, topic, [0], "read_committed", targets={0: 2}, timeout=20)
        assert [r.value for r in got_kp.records] == [b"a0", b"a1"]

        cf.commit()  # marker at 7; k0 (4) is still open
        poll_until(
            lambda: kp_end_offsets(server.bootstrap, topic, [0], "read_committed") == {0: 4},
            10,
            "the LSO to move to the kafka-python transaction's first offset (4)",
        )
        got = cf_drain(server.bootstrap, topic, [0], "read_committed", targets={0: 4}, timeout=20)
        assert [r.value for r in got.records] == [b"a0", b"a1", b"c0", b"a2"]

        kp.abort()  # marker at 8: nothing open any more
        poll_until(
            lambda: kp_end_offsets(server.bootstrap, topic, [0], "read_committed") == {0: 9},
            10,
            "the LSO to reach the log end (9) once nothing is open",
        )
        got = cf_drain(server.bootstrap, topic, [0], "read_committed", timeout=20)
        assert [r.value for r in got.records] == [b"a0", b"a1", b"c0", b"a2", b"c1", b"a3"]
        assert got.ends == {0: 9}
        unc = cf_drain(server.bootstrap, topic, [0], "read_uncommitted", timeout=20)
        assert [(r.offset, r.value) for r in unc.records] == [
            (0, b"a0"), (1, b"a1"), (2, b"c0"), (3, b"a2"), (4, b"k0"), (5, b"c1"), (6, b"a3"),
        ]  # fmt: skip
    finally:
        kp.close()
        cf.close()


def read_from(client: str, bootstrap: str, topic: str, start: int, isolation: str) -> list[tuple[int, bytes]]:
    """(offset, value) of one partition from ``start`` to the log end, with confluent or kafka-python."""
    from confluent_kafka import KafkaError, TopicPartition

    end = high_watermarks(bootstrap, topic, [0])[0]
    deadline = time.monotonic() + 30
    out: list[tuple[int, bytes]] = []
    if client == "confluent":
        consumer = confluent_consumer(bootstrap, **{"isolation.level": isolation, "fetch.wait.max.ms": 100})
        try:
            consumer.assign([TopicPartition(topic, 0, start)])
            eof = -1
            while eof < end:
                assert time.monotonic() < deadline, f"confluent from {start}: EOF at {eof}, end {end}"
                for msg in consumer.consume(num_messages=1000, timeout=0.2):
                    err = msg.error()
                    if err is not None:
                        assert err.code() == KafkaError._PARTITION_EOF, f"consumer error: {err}"
                        eof = msg.offset()
                    else:
                        out.append((msg.offset(), msg.value()))
        finally:
            consumer.close()
        return out
    from kafka import TopicPartition as KpTopicPartition

    kp = kp_consumer(bootstrap, isolation_level=isolation)
    try:
        tp = KpTopicPartition(topic, 0)
        kp.assign([tp])
        kp.seek(tp, start)
        while kp.position(tp, timeout_ms=10_000) < end:
            assert time.monotonic() < deadline, f"kafka-python from {start}: at {kp.position(tp)}, end {end}"
            for records in kp.poll(timeout_ms=200, max_records=5000).values():
                out.extend((r.offset, r.value) for r in records)
    finally:
        kp.close()
    return out


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_read_committed_from_inside_an_aborted_transaction(server: RielServer, client: str) -> None:
    """A fetch that starts after an aborted transaction's first offset still learns it was aborted."""
    topic = unique_topic("txn-mid")
    create_topic(server.bootstrap, topic, 1)

    def produce_plain(value: bytes) -> int:
        return plain_offset(server.bootstrap, topic, value)

    producer = ConfluentTxn(server.bootstrap, txn_id("mid"))
    try:
        producer.init()
        assert produce_plain(b"p0") == 0
        producer.begin()
        for v in (b"x1", b"x2"):
            producer.send(topic, v, 0)
        assert producer.flush_all([b"x1", b"x2"]) == {b"x1": (0, 1), b"x2": (0, 2)}
        assert produce_plain(b"p1") == 3
        producer.send(topic, b"x3", 0)
        assert producer.flush_all([b"x3"]) == {b"x3": (0, 4)}
        producer.abort()  # marker at 5
        poll_until(
            lambda: kp_end_offsets(server.bootstrap, topic, [0], "read_committed") == {0: 6},
            10,
            "the abort marker",
        )
        assert produce_plain(b"p2") == 6
    finally:
        producer.close()
    for start, want in ((0, [b"p0", b"p1", b"p2"]), (2, [b"p1", b"p2"]), (4, [b"p2"]), (5, [b"p2"])):
        got = read_from(client, server.bootstrap, topic, start, "read_committed")
        assert [v for _, v in got] == want, f"{client} read_committed from offset {start}: {got}"
    got = read_from(client, server.bootstrap, topic, 2, "read_uncommitted")
    assert [v for _, v in got] == [b"x2", b"p1", b"x3", b"p2"], f"{client} read_uncommitted from 2: {got}"


def test_aborted_transactions_across_segments_survive_kill9(riel_factory: ServerFactory) -> None:
    """Transactions spanning many small segments, aborted and committed alternately with plain records
    inside them: read_committed from the start and from inside every transaction is exact, before and
    after kill -9 and restart (the aborted-transaction index is rebuilt or durable)."""
    srv = riel_factory(flush="always", extra_args=TXN_SERVER_ARGS)
    topic = unique_topic("txn-segments")
    create_topic(srv.bootstrap, topic, 1, {"segment.bytes": "2048"})
    producer = ConfluentTxn(srv.bootstrap, txn_id("segments"), **{"batch.num.messages": 4})
    committed: dict[int, bytes] = {}  # offset -> value
    starts: list[int] = []  # an offset inside every transaction
    try:
        producer.init()
        for t in range(6):
            commits = t % 2 == 1
            values = [f"t{t}-{i:02d}-{'c' if commits else 'a'}-".encode() + b"." * 100 for i in range(24)]
            producer.begin()
            for v in values[:12]:
                producer.send(topic, v, 0)
            producer.flush_all(values[:12])
            ((_, off),) = confluent_produce(
                srv.bootstrap, topic, [Rec(None, f"plain-{t}".encode())], partition=0,
                conf={"enable.idempotence": True},
            )  # fmt: skip
            committed[off] = f"plain-{t}".encode()
            for v in values[12:]:
                producer.send(topic, v, 0)
            offsets = producer.flush_all(values)
            if commits:
                producer.commit()
                committed.update({o: v for v, (_, o) in offsets.items()})
            else:
                producer.abort()
            starts.append(offsets[values[5]][1])
    finally:
        producer.close()
    segments = sorted(srv.data_dir.rglob(f"{topic}-0/*.log"))
    assert len(segments) > 6, f"only {len(segments)} segments: the transactions do not span segments"

    def check(when: str) -> None:
        poll_until(
            lambda: (
                kp_end_offsets(srv.bootstrap, topic, [0], "read_committed")
                == high_watermarks(srv.bootstrap, topic, [0])
            ),
            10,
            "the LSO to reach the log end",
        )
        for start in [0, *starts]:
            want = [(o, v) for o, v in sorted(committed.items()) if o >= start]
            for client in ("confluent", "kafka-python"):
                got = read_from(client, srv.bootstrap, topic, start, "read_committed")
                extra, missing = sorted(set(got) - set(want))[:3], sorted(set(want) - set(got))[:3]
                assert got == want, (
                    f"{when}: {client} read_committed from {start}: {len(got)} records, want {len(want)}; "
                    f"unexpected {extra}, missing {missing}"
                )

    check("before the restart")
    srv.kill9()
    srv.start()
    check("after kill -9 and restart")


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_offsets_sent_to_a_transaction_commit_only_with_it(server: RielServer, client: str) -> None:
    """send_offsets_to_transaction: an aborted transaction leaves the group's offsets alone, a committed
    one commits them (with its records) - seen through OffsetFetch (kafka-python admin)."""
    topic, sink, group = unique_topic("txn-offs-in"), unique_topic("txn-offs-out"), unique_topic("txn-offs-g")
    create_topic(server.bootstrap, topic, 2)
    create_topic(server.bootstrap, sink, 1)
    producer = txn_producer(client, server.bootstrap, txn_id("offs"))

    def send_offsets(offsets: dict[int, int]) -> None:
        if isinstance(producer, ConfluentTxn):
            from confluent_kafka import TopicPartition

            consumer = confluent_consumer(server.bootstrap, **{"group.id": group})
            try:
                producer.producer.send_offsets_to_transaction(
                    [TopicPartition(topic, p, o) for p, o in offsets.items()],
                    consumer.consumer_group_metadata(),
                    OP_TIMEOUT_S,
                )
            finally:
                consumer.close()
        else:
            from kafka import TopicPartition as KpTopicPartition
            from kafka.structs import OffsetAndMetadata

            assert isinstance(producer, KafkaPythonTxn)
            kp = producer.producer
            bounded(
                lambda: kp.send_offsets_to_transaction(
                    {KpTopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()},
                    group,
                ),
                OP_TIMEOUT_S,
                "kafka-python send_offsets_to_transaction",
            )

    def group_offsets() -> dict[int, int]:
        with kp_admin(server.bootstrap) as admin:
            found = admin.list_group_offsets(group).get(group, {})
        return {tp.partition: o.offset for tp, o in found.items() if tp.topic == topic and o.offset >= 0}

    try:
        producer.init()
        producer.begin()
        producer.send(sink, b"aborted", 0)
        send_offsets({0: 5, 1: 3})
        producer.abort()
        assert group_offsets() == {}, "an aborted transaction's offsets were committed"
        producer.begin()
        producer.send(sink, b"committed", 0)
        send_offsets({0: 7})
        producer.commit()
        poll_until(lambda: group_offsets() == {0: 7}, 10, lambda: f"offsets {{0: 7}}, have {group_offsets()}")
    finally:
        producer.close()
    got = cf_drain(server.bootstrap, sink, [0], "read_committed", timeout=30)
    assert_exactly(got, [b"committed"], "read_committed sink")


# --------------------------------------------------------------- 3. consume-transform-produce (EOS)


class TxnWorker:
    """One txn_worker.py process; ``events()`` re-reads its JSON-lines event file."""

    def __init__(self, name: str, bootstrap: str, group: str, input_topic: str, output_topic: str, tid: str,
                 events: Path, *extra: str) -> None:  # fmt: skip
        self.name = name
        self.events_path = events
        self.stderr_path = events.with_suffix(".stderr")
        cmd = [
            sys.executable, str(WORKER), "--bootstrap", bootstrap, "--group", group,
            "--input", input_topic, "--output", output_topic, "--transactional-id", tid,
            "--events", str(events), *extra,
        ]  # fmt: skip
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        try:
            lines = self.events_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # being written
            if kind is None or event["event"] == kind:
                out.append(event)
        return out

    def committed_inputs(self) -> int:
        return sum(len(e["inputs"]) for e in self.events("committed"))

    def check_alive(self) -> None:
        code = self.proc.poll()
        errors = self.events("error")
        if errors or (code is not None and code != 0):
            raise AssertionError(f"{self.name} failed (exit {code}): {errors}\n{self.stderr()}")

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def wait_for(worker: TxnWorker, predicate: Callable[[], bool], timeout: float, what: str) -> None:
    def check() -> bool:
        if predicate():
            return True
        worker.check_alive()
        return False

    poll_until(
        check, timeout, lambda: f"{worker.name}: {what}; events {worker.events()[-3:]}\n{worker.stderr()}"
    )


def test_consume_transform_produce_exactly_once(server: RielServer, tmp_path: Path) -> None:
    n = 300
    bootstrap = server.bootstrap
    source, sink = unique_topic("ctp-in"), unique_topic("ctp-out")
    create_topic(bootstrap, source, PARTITIONS)
    create_topic(bootstrap, sink, PARTITIONS)
    inputs = make_messages(n, tag="in")
    confluent_produce(bootstrap, source, inputs)
    group, tid = unique_topic("ctp-group"), txn_id("ctp")
    workers: list[TxnWorker] = []

    def start(name: str, *extra: str) -> TxnWorker:
        w = TxnWorker(name, bootstrap, group, source, sink, tid, tmp_path / f"{name}.jsonl", *extra)
        workers.append(w)
        return w

    def group_committed() -> int:
        with kp_admin(bootstrap) as admin:
            offsets = admin.list_group_offsets(group).get(group, {})
        return sum(o.offset for tp, o in offsets.items() if tp.topic == source and o.offset >= 0)

    try:
        # Run 1: random aborts, then kill -9 somewhere in the middle (in or between transactions).
        run1 = start("run1", "--abort-rate", "0.25", "--seed", "1")
        wait_for(run1, lambda: run1.committed_inputs() >= n // 4, 60, f">= {n // 4} inputs committed")
        run1.kill()
        assert run1.committed_inputs() < n, "run 1 finished before the kill: nothing was interrupted"
        # Run 2: fences run 1 (aborting whatever it left open), commits a few, then hangs with an open
        # transaction whose records are in the log and whose offsets were sent.
        run2 = start("run2", "--abort-rate", "0.25", "--seed", "2", "--hang-after-commits", "4")
        wait_for(run2, lambda: bool(run2.events("hanging")), 60, "a hanging transaction")
        # Run 3 fences the hanging zombie; then the zombie tries to commit and must be refused.
        run3 = start("run3", "--abort-rate", "0.2", "--seed", "3")
        wait_for(run3, lambda: bool(run3.events("initialized")), 60, "init_transactions")
        run2.proc.send_signal(signal.SIGUSR1)
        wait_for(run2, lambda: run2.proc.poll() is not None, 30, "the zombie to give up")
        (fenced,) = run2.events("fenced")
        assert fenced["code"] in FENCING_CODES or fenced["fatal"], f"zombie's commit failed oddly: {fenced}"
        # Run 3 processes the rest; done when the group's committed offsets cover the input.
        wait_for(run3, lambda: group_committed() == n, 120, f"the group to commit all {n} input offsets")
        run3.proc.send_signal(signal.SIGTERM)
        run3.proc.wait(30)
        run3.check_alive()
    finally:
        for w in workers:
            w.kill()

    aborts = sum(len(w.events("aborted")) for w in workers)
    print(
        "; ".join(f"{w.name}: {len(w.events('committed'))} committed, {len(w.events('aborted'))} aborted"
                  for w in workers) + f"; zombie: {fenced['code']}"
    )  # fmt: skip
    assert aborts >= 1, "no transaction was aborted: the rewind path went untested"
    want = [b"out:" + (m.value or b"") for m in inputs]
    got = cf_drain(bootstrap, sink, list(range(PARTITIONS)), "read_committed", timeout=60)
    assert_exactly(got, want, "read_committed output")
    # The aborted, killed and fenced transactions did write records: read_uncommitted has more.
    unc = cf_drain(bootstrap, sink, list(range(PARTITIONS)), "read_uncommitted", timeout=60)
    assert len(unc.records) > n, f"read_uncommitted saw only {len(unc.records)}: no aborted output at all"
    assert set(unc.values()) == set(want), "read_uncommitted output holds values no input produced"


# ------------------------------------------------------------------------------------ 4. fencing


def zombie_is_fenced(old: TxnProducer, topic: str, timeout: float = 20.0) -> BaseException:
    """Commit the fenced producer's open transaction, then keep trying whole new transactions: every
    attempt must fail, and within ``timeout`` with a fencing error. (kafka-python answers
    INVALID_PRODUCER_EPOCH on produce with a KIP-360 epoch bump - InitProducerId carrying its old epoch -
    which the broker must refuse with PRODUCER_FENCED; meanwhile its calls fail with "Invalid
    transition". A zombie whose transaction commits proves the broker let it back in.)"""
    from confluent_kafka import KafkaException
    from kafka.errors import KafkaError as KafkaPythonError

    deadline = time.monotonic() + timeout
    attempts: list[str] = []
    first = True
    while True:
        try:
            if not first:
                old.begin()
                old.send(topic, b"zombie-retry", 0)
                old.flush(5)
            old.commit(10)
        except (KafkaException, KafkaPythonError) as exc:
            attempts.append(f"{error_code(exc)}: {exc}")
            if is_fencing_error(exc):
                return exc
            assert "Invalid transition" in str(exc), f"zombie failed, but not fenced: {attempts}"
        else:
            raise AssertionError(
                f"the fenced {old.client} producer committed a transaction (attempt {len(attempts) + 1}); "
                f"errors before: {attempts}"
            )
        assert time.monotonic() < deadline, f"zombie never got a fencing error in {timeout}s: {attempts[-3:]}"
        first = False
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("first", "second"),
    [("confluent", "confluent"), ("kafka-python", "kafka-python"), ("confluent", "kafka-python"),
     ("kafka-python", "confluent")],
)  # fmt: skip
def test_second_init_fences_the_first_producer(server: RielServer, first: str, second: str) -> None:

    topic = unique_topic("txn-fence")
    create_topic(server.bootstrap, topic, 2)
    tid = txn_id("fence")
    old = txn_producer(first, server.bootstrap, tid)
    new: TxnProducer | None = None
    try:
        old.init()
        old.begin()
        zombie = [f"zombie-{i}".encode() for i in range(6)]
        old.send_all(topic, zombie)  # in the log, uncommitted

        new = txn_producer(second, server.bootstrap, tid)
        new.init()  # bumps the epoch, aborts the open transaction

        old.send(topic, b"zombie-late", 0)
        old.flush(10)
        fenced = zombie_is_fenced(old, topic)
        print(f"{first} zombie fenced with {error_code(fenced)}: {fenced!r}")
        assert b"zombie-late" not in old.delivered, "a fenced producer's record was acknowledged"

        fresh = [f"fresh-{i}".encode() for i in range(4)]
        new.begin()
        new.send_all(topic, fresh)
        new.commit()
    finally:
        if new is not None:
            new.close()
        old.close()
    got = cf_drain(server.bootstrap, topic, [0, 1], "read_committed", timeout=30)
    assert_exactly(got, fresh, "read_committed after fencing")
    unc = cf_drain(server.bootstrap, topic, [0, 1], "read_uncommitted", timeout=30)
    assert set(zombie) <= set(unc.values()), "the zombie's records never reached the log: test proved little"


# -------------------------------------------------- 5. kill -9 of the broker inside a transaction


def test_broker_kill9_inside_open_transaction(riel_factory: ServerFactory) -> None:
    srv = riel_factory(flush="always", extra_args=TXN_SERVER_ARGS)
    topic = unique_topic("txn-kill9")
    create_topic(srv.bootstrap, topic, 2)
    tid = txn_id("kill9")
    producer = ConfluentTxn(srv.bootstrap, tid, **{"transaction.timeout.ms": SHORT_TXN_TIMEOUT_MS})
    before = [f"before-{i}".encode() for i in range(8)]
    aborted = [f"aborted-{i}".encode() for i in range(6)]
    open_ = [f"open-{i}".encode() for i in range(8)]
    after = [f"after-{i}".encode() for i in range(4)]
    producer.init()
    producer.begin()
    producer.send_all(topic, before)
    producer.commit()
    producer.begin()
    producer.send_all(topic, aborted)
    producer.abort()
    producer.begin()
    producer.send_all(topic, open_)  # acknowledged with flush=always: durable, and never committed

    srv.kill9()
    srv.start()
    produce_plain_round_robin(srv.bootstrap, topic, after)

    # The open transaction survives the crash and must be aborted by its timeout: read_committed
    # reaches the log end (after the records produced since) in bounded time.
    limit = SHORT_TXN_TIMEOUT_MS / 1000 + ABORT_MARGIN_S
    got = cf_drain(srv.bootstrap, topic, [0, 1], "read_committed", timeout=limit)
    assert_exactly(got, before + after, "read_committed after kill -9 and restart")
    print(f"read_committed reached the end {got.seconds:.1f} s after the restart")
    unc = cf_drain(srv.bootstrap, topic, [0, 1], "read_uncommitted", timeout=30)
    assert_exactly(unc, before + aborted + open_ + after, "read_uncommitted after kill -9 and restart")

    # The old producer's transaction is gone: its commit fails.
    from confluent_kafka import KafkaException

    with pytest.raises(KafkaException) as caught:
        producer.commit(15)
    print(f"commit of the aborted transaction: {error_code(caught.value)}")
    producer.close()

    # The transactional.id works again after recovery.
    again = ConfluentTxn(srv.bootstrap, tid, **{"transaction.timeout.ms": SHORT_TXN_TIMEOUT_MS})
    later = [f"later-{i}".encode() for i in range(4)]
    again.init()
    again.begin()
    again.send_all(topic, later)
    again.commit()
    again.close()
    got = cf_drain(srv.bootstrap, topic, [0, 1], "read_committed", timeout=30)
    assert_exactly(got, before + after + later, "read_committed after a new transaction")


# ------------------------------------------------------------- 6. timeout abort without a crash


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_transaction_past_its_timeout_is_aborted(server: RielServer, client: str) -> None:
    from confluent_kafka import KafkaException
    from kafka.errors import KafkaError as KafkaPythonError

    topic = unique_topic("txn-timeout")
    create_topic(server.bootstrap, topic, 2)
    tid = txn_id("timeout")
    producer = txn_producer(client, server.bootstrap, tid, timeout_ms=SHORT_TXN_TIMEOUT_MS)
    before = [f"before-{i}".encode() for i in range(4)]
    stale = [f"stale-{i}".encode() for i in range(6)]
    after = [f"after-{i}".encode() for i in range(4)]
    try:
        producer.init()
        producer.begin()
        producer.send_all(topic, before)
        producer.commit()
        opened = time.monotonic()  # no later than the broker starts the transaction's clock
        producer.begin()
        producer.send_all(topic, stale)
        produce_plain_round_robin(server.bootstrap, topic, after)
        # Not blocked: read_committed gets past the stale transaction once the broker aborts it.
        limit = SHORT_TXN_TIMEOUT_MS / 1000 + ABORT_MARGIN_S
        got = cf_drain(server.bootstrap, topic, [0, 1], "read_committed", timeout=limit)
        assert_exactly(got, before + after, "read_committed after the timeout")
        waited = time.monotonic() - opened
        assert waited >= SHORT_TXN_TIMEOUT_MS / 1000 * 0.95, (
            f"the transaction ended after {waited:.1f} s, before its {SHORT_TXN_TIMEOUT_MS} ms timeout"
        )
        with pytest.raises((KafkaException, KafkaPythonError)) as caught:
            producer.commit(15)
        print(f"{client}: commit after the timeout abort: {error_code(caught.value)}: {caught.value!r}")
    finally:
        producer.close()
    unc = cf_drain(server.bootstrap, topic, [0, 1], "read_uncommitted", timeout=30)
    assert_exactly(unc, before + stale + after, "read_uncommitted after the timeout")

    again = txn_producer(client, server.bootstrap, tid, timeout_ms=SHORT_TXN_TIMEOUT_MS)
    try:
        again.init()
        again.begin()
        again.send(topic, b"again", 0)
        again.flush_all([b"again"])
        again.commit()
    finally:
        again.close()
    got = cf_drain(server.bootstrap, topic, [0, 1], "read_committed", timeout=30)
    assert_exactly(got, [*before, *after, b"again"], "read_committed after a new transaction")


# ----------------------------------------------------------------- 7. transaction timeout maximum


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_transaction_timeout_above_broker_maximum_is_refused(server: RielServer, client: str) -> None:
    from confluent_kafka import KafkaException
    from kafka.errors import KafkaError as KafkaPythonError

    too_long = txn_producer(client, server.bootstrap, txn_id("too-long"), timeout_ms=1_000_000)
    try:
        with pytest.raises((KafkaException, KafkaPythonError)) as caught:
            too_long.init(15)
        code = error_code(caught.value)
        assert code == "INVALID_TRANSACTION_TIMEOUT", f"{client}: refused with {code}: {caught.value!r}"
    finally:
        too_long.close()
    topic = unique_topic("txn-at-max")
    create_topic(server.bootstrap, topic, 1)
    at_max = txn_producer(client, server.bootstrap, txn_id("at-max"), timeout_ms=DEFAULT_MAX_TXN_TIMEOUT_MS)
    try:
        at_max.init()  # the maximum itself is allowed
        at_max.begin()
        at_max.send(topic, b"ok", 0)
        at_max.flush_all([b"ok"])
        at_max.commit()
    finally:
        at_max.close()


def test_transaction_max_timeout_flag_sets_the_maximum(riel_factory: ServerFactory) -> None:
    from confluent_kafka import KafkaException

    srv = riel_factory(extra_args=(*TXN_SERVER_ARGS, "--transaction-max-timeout-ms", "10000"))
    refused = ConfluentTxn(srv.bootstrap, txn_id("flag-over"), **{"transaction.timeout.ms": 10_001})
    with pytest.raises(KafkaException) as caught:
        refused.init(15)
    assert error_code(caught.value) == "INVALID_TRANSACTION_TIMEOUT", repr(caught.value)
    refused.close()
    accepted = ConfluentTxn(srv.bootstrap, txn_id("flag-max"), **{"transaction.timeout.ms": 10_000})
    accepted.init()
    accepted.close()
