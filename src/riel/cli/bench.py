"""``riel bench``: a produce-then-consume benchmark against a running server (confluent-kafka, the same
librdkafka every CLI command uses), bounded in size and time, with msgs/s and MB/s for each side."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from riel.cli.output import EXIT_FAILED, EXIT_USAGE, CliError, console, emit, err_console, json_option, table
from riel.cli.target import (
    ClientConfig,
    admin_client,
    bootstrap_address,
    bootstrap_option,
    client_config,
    kafka_error,
)

REQUEST_TIMEOUT_S: Final = 20.0
RESULT_TIMEOUT_S: Final = 30.0
MIN_PHASE_TIMEOUT_S: Final = 60.0  # each phase gets this, plus time for ~10k msgs/s at worst
PROGRESS_EVERY: Final = 5_000
MB: Final = 1_000_000  # MB/s in decimal megabytes, as network and disk figures are quoted


@dataclass
class Phase:
    messages: int = 0
    bytes: int = 0
    seconds: float = 0.0
    errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        seconds = max(self.seconds, 1e-9)
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 6),
            "msgs_per_s": round(self.messages / seconds, 1),
            "mb_per_s": round(self.bytes / seconds / MB, 3),
            "errors": self.errors,
        }


def _phase_timeout(messages: int) -> float:
    return MIN_PHASE_TIMEOUT_S + messages / 10_000


def _watermarks(admin: Any, topic: str, partitions: int, address: str) -> dict[int, int]:
    from confluent_kafka import KafkaException, TopicPartition
    from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

    spec = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    try:
        futures = admin.list_offsets(
            {TopicPartition(topic, p): spec for p in range(partitions)}, request_timeout=REQUEST_TIMEOUT_S
        )
        return {tp.partition: int(f.result(timeout=RESULT_TIMEOUT_S).offset) for tp, f in futures.items()}
    except KafkaException as exc:
        raise kafka_error(exc, bootstrap=address, topic=topic) from None


def _create_topic(admin: Any, topic: str, partitions: int, address: str) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    try:
        (future,) = admin.create_topics(
            [NewTopic(topic, partitions, -1)], request_timeout=REQUEST_TIMEOUT_S
        ).values()
        future.result(timeout=RESULT_TIMEOUT_S)
    except KafkaException as exc:
        raise kafka_error(exc, bootstrap=address, topic=topic) from None
    deadline = time.monotonic() + RESULT_TIMEOUT_S  # until the metadata shows every partition
    while time.monotonic() < deadline:
        metadata = admin.list_topics(topic=topic, timeout=REQUEST_TIMEOUT_S)
        info = metadata.topics.get(topic)
        if info is not None and info.error is None and len(info.partitions) == partitions:
            return
        time.sleep(0.05)
    raise CliError(f"topic {topic!r} was created but did not show up in the metadata", exit_code=EXIT_FAILED)


def _produce(
    address: str,
    topic: str,
    messages: int,
    size: int,
    producer_conf: dict[str, Any],
    progress: Progress,
) -> Phase:
    from confluent_kafka import Producer

    timeout = _phase_timeout(messages)
    producer = Producer(
        client_config(address, **producer_conf, **{"message.timeout.ms": int(timeout * 1000)})
    )
    task = progress.add_task("produce", total=messages)
    phase = Phase()
    delivered = 0
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        nonlocal delivered
        delivered += 1
        if err is not None:
            phase.errors += 1
            if len(failures) < 3:
                failures.append(str(err))

    payload = bytes(i % 251 for i in range(size))  # not all zeros: no accidental compression wins
    deadline = time.monotonic() + timeout
    started = time.perf_counter()
    for i in range(messages):
        while True:
            try:
                producer.produce(topic, payload, on_delivery=on_delivery)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)
                if time.monotonic() > deadline:
                    raise CliError(f"producing did not finish within {timeout:.0f} s") from None
        if i % PROGRESS_EVERY == 0:
            producer.poll(0)
            progress.update(task, completed=delivered)
    while delivered < messages:
        if time.monotonic() > deadline:
            raise CliError(
                f"only {delivered} of {messages} messages were acknowledged within {timeout:.0f} s"
            )
        producer.poll(0.1)
        progress.update(task, completed=delivered)
    phase.seconds = time.perf_counter() - started
    progress.update(task, completed=delivered)
    phase.messages = messages - phase.errors
    phase.bytes = phase.messages * size
    if failures:
        raise CliError(
            f"{phase.errors} of {messages} messages failed, e.g. {failures[0]}",
            hint="check the server's log; --acks 1 or a smaller --batch-size may help",
        )
    return phase


def _consume(
    address: str, topic: str, starts: dict[int, int], ends: dict[int, int], progress: Progress
) -> Phase:
    from confluent_kafka import Consumer, TopicPartition

    total = sum(ends[p] - starts[p] for p in ends)
    timeout = _phase_timeout(total)
    settings: ClientConfig = {
        "group.id": f"riel-bench-{uuid.uuid4().hex[:8]}",  # assign() only: it never joins the group
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 100,
    }
    consumer = Consumer(client_config(address, **settings))
    task = progress.add_task("consume", total=total)
    phase = Phase()
    remaining = {p: ends[p] - starts[p] for p in ends if ends[p] > starts[p]}
    try:
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in remaining])
        deadline = time.monotonic() + timeout
        started = time.perf_counter()
        while remaining:
            if time.monotonic() > deadline:
                raise CliError(f"consumed {phase.messages} of {total} messages within {timeout:.0f} s")
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error() is not None:
                    phase.errors += 1
                    continue
                partition, offset = message.partition(), message.offset()
                if partition in remaining and offset is not None and offset < ends[partition]:
                    phase.messages += 1
                    phase.bytes += len(message.value() or b"")
                    if offset + 1 >= ends[partition]:
                        del remaining[partition]
            progress.update(task, completed=phase.messages)
        phase.seconds = time.perf_counter() - started
    finally:
        consumer.close()
    return phase


@click.command()
@click.option(
    "--messages", "-n", type=click.IntRange(min=1), default=200_000, show_default=True, help="How many."
)
@click.option(
    "--size",
    "-s",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Bytes per message value.",
)
@click.option(
    "--topic",
    "-t",
    default=None,
    help="Use this topic (created if missing, kept afterwards). Default: a fresh topic, deleted after.",
)
@click.option(
    "--partitions",
    "-p",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Partitions of a topic the benchmark creates.",
)
@click.option("--acks", type=click.Choice(["all", "1", "0"]), default="all", show_default=True)
@click.option("--linger-ms", type=click.IntRange(min=0), default=5, show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="Producer batch.size in bytes.",
)
@json_option
@bootstrap_option
def bench(
    messages: int,
    size: int,
    topic: str | None,
    partitions: int,
    acks: str,
    linger_ms: int,
    batch_size: int,
    as_json: bool,
    bootstrap: str | None,
) -> None:
    """Produce MESSAGES of SIZE bytes, then consume them back; print msgs/s and MB/s of each side.

    It measures the whole path (this process's librdkafka and Python loop included), so compare runs on
    the same machine. A small default (200,000 x 100 B) keeps it to seconds."""
    from confluent_kafka import KafkaException

    address = bootstrap_address(bootstrap)
    admin = admin_client(bootstrap)
    temporary = topic is None
    name = topic or f"riel-bench-{uuid.uuid4().hex[:12]}"
    try:
        existing = admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics.get(name)
    except KafkaException as exc:
        raise kafka_error(exc, bootstrap=address) from None
    if existing is not None and existing.error is None:
        count = len(existing.partitions)
    else:
        _create_topic(admin, name, partitions, address)
        count = partitions
    if count < 1:
        raise CliError(f"topic {name!r} has no partitions", exit_code=EXIT_USAGE)
    producer_conf: dict[str, Any] = {
        "acks": acks,
        "linger.ms": linger_ms,
        "batch.size": batch_size,
        "queue.buffering.max.messages": 1_000_000,
        "enable.idempotence": False,  # plain throughput; acks=0 forbids idempotence anyway
    }
    progress = Progress(
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=as_json or not err_console.is_terminal,
    )
    try:
        starts = _watermarks(admin, name, count, address)
        with progress:
            produced = _produce(address, name, messages, size, producer_conf, progress)
            ends = _watermarks(admin, name, count, address)
            consumed = _consume(address, name, starts, ends, progress)
    finally:
        if temporary:
            try:
                (future,) = admin.delete_topics([name], request_timeout=REQUEST_TIMEOUT_S).values()
                future.result(timeout=RESULT_TIMEOUT_S)
            except KafkaException as exc:
                err_console.print(f"riel: could not delete the benchmark topic {name}: {exc}", markup=False)
    data: dict[str, Any] = {
        "bootstrap": address,
        "topic": name,
        "topic_deleted": temporary,
        "partitions": count,
        "message_size": size,
        "acks": acks,
        "linger_ms": linger_ms,
        "batch_size": batch_size,
        "produce": produced.as_dict(),
        "consume": consumed.as_dict(),
    }

    def render() -> None:
        rows = [
            [side, d["messages"], f"{d['seconds']:.2f}", f"{d['msgs_per_s']:,.0f}", f"{d['mb_per_s']:.1f}"]
            for side, d in (("produce", data["produce"]), ("consume", data["consume"]))
        ]
        console.print(
            f"[bold]riel bench[/] {messages:,} x {size} B to [bold]{escape(name)}[/] ({count} partition(s)) "
            f"at {escape(address)}, acks={acks}, linger.ms={linger_ms}, batch.size={batch_size}",
            soft_wrap=True,
            highlight=False,
        )
        console.print(table(["", "messages", "seconds", "msgs/s", "MB/s"], rows))

    emit(data, as_json, render)
