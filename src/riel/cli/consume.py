"""``riel consume``: read a topic from a server (with or without a consumer group, optionally following
new messages) or from a stopped server's data directory, printed for people (a line per message), as
JSON lines, or through a kcat-style ``--format`` template.

The reading machinery here (start/end positions, server and data-directory readers, message output) is
shared with ``riel replay``.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any, Final

import click
from rich.text import Text

from riel.cli.output import EXIT_NOT_FOUND, EXIT_USAGE, CliError, console, err_console
from riel.cli.target import (
    ClientConfig,
    admin_client,
    bootstrap_address,
    bootstrap_option,
    client_config,
    data_dir_option,
    kafka_error,
    open_data_dir,
    unknown_topic,
)

STALL_TIMEOUT_S: Final = 30.0  # a bounded read gives up when the server sends nothing for this long
COMMIT_INTERVAL_S: Final = 5.0  # how often a group consumer in --follow mode commits what it printed
ASSIGN_TIMEOUT_S: Final = 30.0  # how long a group consumer waits for its partitions
DATA_DIR_READ_BYTES: Final = 1 << 20
FETCH_BATCH: Final = 500

Header = tuple[str, bytes | None]

# ---------------------------------------------------------------------------------------------------
# Messages and their representations


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    timestamp: int  # ms since the epoch; -1 when unknown
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


def bytes_to_json(data: bytes | None) -> str | dict[str, str] | None:
    """Text when ``data`` is UTF-8, else ``{"base64": ...}``; None stays null (a tombstone value)."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def headers_to_json(headers: Sequence[Header]) -> dict[str, object]:
    """Headers as an object; a name that occurs more than once maps to the list of its values."""
    out: dict[str, object] = {}
    for name, raw in headers:
        value = bytes_to_json(raw)
        if name in out:
            previous = out[name]
            out[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[name] = value
    return out


def iso_time(timestamp_ms: int) -> str | None:
    if timestamp_ms < 0:
        return None
    return (
        datetime.fromtimestamp(timestamp_ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def message_to_json(message: Message) -> dict[str, object]:
    return {
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "timestamp": message.timestamp,
        "time": iso_time(message.timestamp),
        "key": bytes_to_json(message.key),
        "value": bytes_to_json(message.value),
        "headers": headers_to_json(message.headers),
    }


_TOKEN: Final = re.compile(rb"%[%tpokKsSRhT]|\\(?:x[0-9a-fA-F]{2}|[0-7]{1,3}|[nrt0\\])")
_ESCAPES: Final = {b"\\n": b"\n", b"\\r": b"\r", b"\\t": b"\t", b"\\0": b"\0", b"\\\\": b"\\"}


def _length(data: bytes | None) -> bytes:
    return str(-1 if data is None else len(data)).encode()


_FIELDS: Final[dict[bytes, Callable[[Message], bytes]]] = {
    b"%%": lambda m: b"%",
    b"%t": lambda m: m.topic.encode(),
    b"%p": lambda m: str(m.partition).encode(),
    b"%o": lambda m: str(m.offset).encode(),
    b"%k": lambda m: m.key or b"",
    b"%K": lambda m: _length(m.key),
    b"%s": lambda m: m.value or b"",
    b"%S": lambda m: _length(m.value),
    b"%R": lambda m: (-1 if m.value is None else len(m.value)).to_bytes(4, "big", signed=True),
    b"%h": lambda m: b",".join(name.encode() + b"=" + (value or b"") for name, value in m.headers),
    b"%T": lambda m: str(m.timestamp).encode(),
}


class Template:
    """A kcat ``-f`` format: %t topic, %p partition, %o offset, %k key, %K key length, %s value,
    %S value length, %R value length as 4 big-endian bytes, %h headers (n=v,...), %T timestamp (ms),
    %% a percent sign; escapes \\n \\r \\t \\0 \\\\ \\xHH and octal \\NNN."""

    def __init__(self, template: str) -> None:
        raw = template.encode("utf-8", "surrogateescape")
        self.parts: list[bytes | Callable[[Message], bytes]] = []
        position = 0
        for match in _TOKEN.finditer(raw):
            if match.start() > position:
                self.parts.append(raw[position : match.start()])
            token = match.group()
            if token in _FIELDS:
                self.parts.append(_FIELDS[token])
            elif token in _ESCAPES:
                self.parts.append(_ESCAPES[token])
            elif token.startswith(b"\\x"):
                self.parts.append(bytes([int(token[2:], 16)]))
            else:
                self.parts.append(bytes([int(token[1:], 8) & 0xFF]))
            position = match.end()
        if position < len(raw):
            self.parts.append(raw[position:])

    def render(self, message: Message) -> bytes:
        return b"".join(part if isinstance(part, bytes) else part(message) for part in self.parts)


class MessageWriter:
    """Writes messages to stdout as JSON lines, a template, or (on a terminal) a readable line each.
    A closed pipe (``riel consume ... | head``) ends the output quietly."""

    def __init__(self, as_json: bool, template: str | None, *, flush_each: bool) -> None:
        self.as_json = as_json
        self.template = Template(template) if template is not None else None
        self.pretty = not as_json and template is None and console.is_terminal
        if not as_json and template is None and not self.pretty:
            self.template = Template("%s\\n")
        self.flush_each = flush_each or self.pretty
        self.stream: IO[bytes] = sys.stdout.buffer
        self.closed = False
        self.count = 0

    def write(self, message: Message) -> None:
        if self.closed:
            return
        self.count += 1
        if self.pretty:
            console.print(_pretty_line(message), soft_wrap=True)
            return
        if self.as_json:
            data = (json.dumps(message_to_json(message)) + "\n").encode()
        else:
            assert self.template is not None
            data = self.template.render(message)
        try:
            self.stream.write(data)
            if self.flush_each:
                self.stream.flush()
        except BrokenPipeError:
            self._closed_pipe()

    def finish(self) -> None:
        if self.closed:
            return
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._closed_pipe()

    def _closed_pipe(self) -> None:
        import os

        self.closed = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not complain
        os.close(devnull)


def _pretty_line(message: Message) -> Text:
    line = Text()
    line.append(f"{message.partition}@{message.offset} ", style="dim")
    line.append(f"{iso_time(message.timestamp) or '-'} ", style="dim")
    if message.key is not None:
        line.append(message.key.decode("utf-8", "replace"), style="cyan")
        line.append(" ")
    for name, value in message.headers:
        line.append(f"{name}={(value or b'').decode('utf-8', 'replace')} ", style="magenta")
    if message.value is None:
        line.append("(null)", style="dim italic")
    else:
        line.append(message.value.decode("utf-8", "replace"))
    return line


# ---------------------------------------------------------------------------------------------------
# Where to start and stop


_RELATIVE: Final = re.compile(r"-\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNIT_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_time(text: str, now_ms: int | None = None) -> int:
    """Milliseconds since the epoch from ``1764331200000`` (ms), ISO 8601 (``2026-11-28T12:00:00Z``,
    ``2026-11-28 12:00``, ``2026-11-28``; UTC unless an offset is given), ``now`` or ``-15m`` / ``-2h`` /
    ``-1d`` / ``-30s`` (before now)."""
    spec = text.strip()
    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    if spec == "now":
        return now
    if spec.isdigit():
        return int(spec)
    relative = _RELATIVE.fullmatch(spec)
    if relative:
        return now - int(float(relative.group(1)) * _UNIT_MS[relative.group(2)])
    try:
        moment = datetime.fromisoformat(spec.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a time: use ISO 8601 (2026-11-28T09:00:00Z), milliseconds since the epoch, "
            "or -15m / -2h / -1d"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Position:
    """Where a read starts or ends: ``beginning``, ``end``, an offset (negative: that many before
    the end) or a time (the first message with timestamp >= it)."""

    kind: str  # "beginning" | "end" | "offset" | "time"
    value: int = 0

    def describe(self) -> str:
        if self.kind in ("beginning", "end"):
            return self.kind
        if self.kind == "time":
            return iso_time(self.value) or str(self.value)
        return f"offset {self.value}"


BEGINNING: Final = Position("beginning")
END: Final = Position("end")


@dataclass
class Span:
    """Offsets [start, end) of one partition to read; ``low``/``high`` are its log start and end."""

    partition: int
    start: int
    end: int
    low: int
    high: int


def resolve_offset(position: Position, low: int, high: int, time_offset: int | None) -> int:
    if position.kind == "beginning":
        return low
    if position.kind == "end":
        return high
    if position.kind == "offset":
        offset = high + position.value if position.value < 0 else position.value
        return min(max(offset, low), high)
    return high if time_offset is None or time_offset < 0 else min(max(time_offset, low), high)


# ---------------------------------------------------------------------------------------------------
# Reading a data directory (no server)


def data_dir_spans(
    logs: Any, topic: str, partitions: Sequence[int] | None, start: Position, end: Position, where: str
) -> list[Span]:
    info = logs.topics().get(topic)
    if info is None:
        raise unknown_topic(topic, where)
    spans = []
    for partition in _chosen_partitions(info.partitions, partitions, topic):
        log = logs.partition(topic, partition)
        low, high = log.log_start_offset, log.high_watermark
        spans.append(
            Span(
                partition,
                resolve_offset(start, low, high, _log_time_offset(log, start)),
                resolve_offset(end, low, high, _log_time_offset(log, end)),
                low,
                high,
            )
        )
    return spans


def _log_time_offset(log: Any, position: Position) -> int | None:
    if position.kind != "time":
        return None
    found = log.offset_for_timestamp(position.value)
    return None if found is None else int(found[0])


def read_data_dir_span(logs: Any, topic: str, span: Span) -> Iterator[Message]:
    """The messages of ``span`` straight from the partition's segment files, in offset order."""
    from riel.records import decode_batches

    log = logs.partition(topic, span.partition)
    offset = max(span.start, log.log_start_offset)
    while offset < span.end:
        chunk = log.read(offset, DATA_DIR_READ_BYTES)
        if chunk is None:
            return
        with chunk:
            data = chunk.read_bytes()
        batches = decode_batches(data)
        if not batches:
            return
        for header, records in batches:
            if not header.is_control:
                for record in records:
                    if record.offset < offset:
                        continue
                    if record.offset >= span.end:
                        return
                    yield Message(
                        topic,
                        span.partition,
                        record.offset,
                        record.timestamp,
                        record.key,
                        record.value,
                        tuple(record.headers),
                    )
            offset = max(offset, header.next_offset)


# ---------------------------------------------------------------------------------------------------
# Reading from a server


def _chosen_partitions(count: int, wanted: Sequence[int] | None, topic: str) -> list[int]:
    if not wanted:
        return list(range(count))
    missing = sorted({p for p in wanted if not 0 <= p < count})
    if missing:
        raise CliError(
            f"topic {topic!r} has {count} partition(s) (0..{count - 1}); there is no partition "
            f"{', '.join(map(str, missing))}",
            hint=f"`riel topic describe {topic}` shows its partitions",
            exit_code=EXIT_NOT_FOUND,
        )
    return sorted(set(wanted))


def server_partitions(bootstrap: str | None, topic: str, wanted: Sequence[int] | None) -> list[int]:
    """The topic's partitions, or the ``wanted`` ones (checked to exist, without creating the topic)."""
    admin = admin_client(bootstrap)
    address = bootstrap_address(bootstrap)
    from confluent_kafka import KafkaException

    try:
        metadata = admin.list_topics(timeout=10)
    except KafkaException as exc:
        raise kafka_error(exc, bootstrap=address, topic=topic) from None
    found = metadata.topics.get(topic)
    if found is None or (found.error is not None and found.error.name() == "UNKNOWN_TOPIC_OR_PART"):
        raise unknown_topic(topic, address)
    return _chosen_partitions(len(found.partitions), wanted, topic)


def consumer_config(bootstrap: str, group: str | None, **extra: str | int | float | bool) -> ClientConfig:
    return client_config(
        bootstrap,
        **{
            "group.id": group or "riel-cli",  # librdkafka needs one; without --group it is never joined
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "fetch.queue.backoff.ms": 0,
            "allow.auto.create.topics": False,
            **extra,
        },
    )


def server_spans(
    consumer: Any, bootstrap: str, topic: str, partitions: Sequence[int], start: Position, end: Position
) -> list[Span]:
    from confluent_kafka import KafkaException, TopicPartition

    try:
        marks = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
            for p in partitions
        }
        times = {}
        for label, position in (("start", start), ("end", end)):
            if position.kind == "time":
                found = consumer.offsets_for_times(
                    [TopicPartition(topic, p, position.value) for p in partitions], timeout=10
                )
                times[label] = {tp.partition: tp.offset for tp in found}
    except KafkaException as exc:
        raise kafka_error(exc, bootstrap=bootstrap, topic=topic) from None
    return [
        Span(
            p,
            resolve_offset(start, low, high, times.get("start", {}).get(p)),
            resolve_offset(end, low, high, times.get("end", {}).get(p)),
            low,
            high,
        )
        for p, (low, high) in marks.items()
    ]


class Interrupted:
    """Ctrl-C (SIGINT) and SIGTERM set a flag the read loops check, so they can commit and exit."""

    def __init__(self) -> None:
        self.flag = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.flag:  # a second Ctrl-C: give up at once
            raise KeyboardInterrupt
        self.flag = True

    def __enter__(self) -> Interrupted:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclass
class ServerRead:
    """A read loop over a confluent-kafka consumer. ``ends`` None means follow forever; otherwise each
    partition is done when it reaches its end (or the log's end, for compaction gaps)."""

    consumer: Any
    topic: str
    bootstrap: str
    ends: dict[int, int] | None
    interrupted: Interrupted
    idle_timeout: float | None = None
    pending: set[int] = field(default_factory=set)
    assigned: bool = False
    positions: dict[int, int] = field(default_factory=dict)  # next offset to print, per partition

    def add(self, partition: int, start: int) -> None:
        self.assigned = True
        if self.ends is None or start < self.ends.get(partition, 0):
            self.pending.add(partition)

    def remove(self, partition: int) -> None:
        self.pending.discard(partition)

    def done(self) -> bool:
        return self.interrupted.flag or (self.ends is not None and self.assigned and not self.pending)

    def messages(self) -> Iterator[Message]:
        from confluent_kafka import KafkaError

        last_activity = started = time.monotonic()
        while not self.done():
            batch = self.consumer.consume(num_messages=FETCH_BATCH, timeout=0.2)  # rebalances run here
            now = time.monotonic()
            if batch:
                last_activity = now
            elif not self.assigned and now - started > ASSIGN_TIMEOUT_S:
                raise CliError(
                    f"got no partitions of {self.topic!r} within {ASSIGN_TIMEOUT_S:.0f}s",
                    hint="`riel group describe GROUP` shows the group's members; others may hold them all",
                )
            elif self.ends is not None and self.assigned and now - last_activity > STALL_TIMEOUT_S:
                raise CliError(
                    f"no data from {self.bootstrap} for {STALL_TIMEOUT_S:.0f}s while partitions "
                    f"{sorted(self.pending)} of {self.topic!r} were not read to their end",
                    hint="check the server's log; rerun to continue from where the output stopped",
                )
            elif self.idle_timeout is not None and now - last_activity > self.idle_timeout:
                return
            for msg in batch:
                error = msg.error()
                partition = msg.partition()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if self.ends is not None and msg.offset() >= self.ends.get(partition, 0):
                            self.pending.discard(partition)
                        continue
                    raise kafka_error(_KafkaFailure(error), bootstrap=self.bootstrap, topic=self.topic)
                if partition not in self.pending:
                    continue
                offset = msg.offset()
                if self.ends is not None and offset >= self.ends[partition]:
                    self.pending.discard(partition)
                    continue
                # Before the yield: a caller that stops after this message (-n) never resumes us.
                self.positions[partition] = offset + 1
                yield _message(msg)
                if self.ends is not None and offset + 1 >= self.ends[partition]:
                    self.pending.discard(partition)
                if self.done():
                    return


class _KafkaFailure(Exception):
    """Carries a ``KafkaError`` the way ``KafkaException`` does, for ``kafka_error``."""


def _message(msg: Any) -> Message:
    _, timestamp = msg.timestamp()
    return Message(
        msg.topic(),
        msg.partition(),
        msg.offset(),
        timestamp,
        msg.key(),
        msg.value(),
        tuple((name, value) for name, value in (msg.headers() or ())),
    )


def read_server_spans(
    bootstrap: str, topic: str, spans: Sequence[Span], interrupted: Interrupted
) -> Iterator[Message]:
    """Every span (bounded) through one consumer assigned to all of them; per-partition order."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(consumer_config(bootstrap, None))
    try:
        read = ServerRead(consumer, topic, bootstrap, {s.partition: s.end for s in spans}, interrupted)
        for span in spans:
            read.add(span.partition, span.start)
        consumer.assign([TopicPartition(topic, s.partition, s.start) for s in spans if s.start < s.end])
        yield from read.messages()
    finally:
        consumer.close()


# ---------------------------------------------------------------------------------------------------
# Command-line plumbing shared with replay


def check_target(bootstrap: str | None, data_dir: Path | None) -> None:
    if bootstrap is not None and data_dir is not None:
        raise CliError(
            "--bootstrap and --data-dir exclude each other",
            hint="--data-dir reads a stopped server's files; --bootstrap asks a running server",
            exit_code=EXIT_USAGE,
        )


def start_position(from_beginning: bool, offset: int | None, from_time: str | None) -> Position | None:
    chosen = [
        name
        for name, given in (
            ("--from-beginning", from_beginning),
            ("--offset", offset is not None),
            ("--from-time", from_time is not None),
        )
        if given
    ]
    if len(chosen) > 1:
        raise CliError(f"{' and '.join(chosen)} exclude each other", exit_code=EXIT_USAGE)
    if from_beginning:
        return BEGINNING
    if offset is not None:
        return Position("offset", offset)
    if from_time is not None:
        return Position("time", parse_time(from_time))
    return None


def summary(count: int, spans: Sequence[Span], topic: str) -> None:
    """A one-line note on stderr for people (never on stdout, never for pipes)."""
    if err_console.is_terminal:
        ranges = ", ".join(f"{s.partition}:[{s.start},{s.end})" for s in spans if s.start < s.end)
        err_console.print(f"[dim]{count} message(s) from {topic} {ranges}[/]", highlight=False)


# ---------------------------------------------------------------------------------------------------
# riel consume


@click.command(short_help="Print a topic's messages (from a time, offset or group; --follow).")
@click.argument("topic")
@click.option(
    "--group",
    "-g",
    default=None,
    help="Consume as this consumer group: start from its "
    "committed offsets (earliest if none) and commit what was printed.",
)
@click.option(
    "--from-beginning", is_flag=True, help="Start at the first message (the default without a group)."
)
@click.option(
    "--offset",
    "-o",
    type=int,
    default=None,
    help="Start at this offset (negative: that many messages before the end).",
)
@click.option(
    "--from-time",
    default=None,
    metavar="TIME",
    help="Start at the first message at or after TIME (ISO 8601, ms since the epoch, -1h).",
)
@click.option(
    "--partition", "-p", "partitions", type=int, multiple=True, help="Only this partition (repeatable)."
)
@click.option("--count", "-n", type=click.IntRange(min=1), default=None, help="Stop after COUNT messages.")
@click.option("--follow", "-f", is_flag=True, help="Keep waiting for new messages (Ctrl-C stops).")
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="With --follow: stop after this long without a new message.",
)
@click.option(
    "--format",
    "template",
    default=None,
    metavar="TEMPLATE",
    help="kcat-style output: %t topic, %p partition, %o offset, %k key, %s value, %S value "
    "size, %K key size, %h headers, %T timestamp ms, %R value size (4 bytes); \\n \\t \\xHH. "
    "Default: a readable line on a terminal, else the value and a newline.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per line: topic, partition, offset, timestamp, time, key, value, headers "
    '(text when UTF-8, else {"base64": ...}).',
)
@bootstrap_option
@data_dir_option
def consume(
    topic: str,
    group: str | None,
    from_beginning: bool,
    offset: int | None,
    from_time: str | None,
    partitions: tuple[int, ...],
    count: int | None,
    follow: bool,
    idle_timeout: float | None,
    template: str | None,
    as_json: bool,
    bootstrap: str | None,
    data_dir: Path | None,
) -> None:
    """Print the messages of TOPIC. Without --follow it stops at the end offsets it saw when it started.

    \b
    riel consume orders --json | jq .value
    riel consume orders -g audit            # next time: only what is new since
    riel consume orders --from-time -15m -f --format '%p@%o %k=%s\\n'
    riel consume orders --data-dir /var/lib/riel   # a stopped server's files
    """
    check_target(bootstrap, data_dir)
    if as_json and template is not None:
        raise CliError("--json and --format exclude each other", exit_code=EXIT_USAGE)
    start = start_position(from_beginning, offset, from_time)
    writer = MessageWriter(as_json, template, flush_each=follow)
    limit = count if count is not None else -1

    if data_dir is not None:
        if group is not None or follow:
            raise CliError(
                "--group and --follow need a running server",
                hint="drop --data-dir (and pass --bootstrap) to consume as a group or follow new messages",
                exit_code=EXIT_USAGE,
            )
        with open_data_dir(data_dir) as logs:
            spans = data_dir_spans(logs, topic, partitions, start or BEGINNING, END, str(data_dir))
            for span in spans:
                for message in read_data_dir_span(logs, topic, span):
                    if limit == 0 or writer.closed:
                        break
                    writer.write(message)
                    limit -= 1
        writer.finish()
        summary(writer.count, spans, topic)
        return

    address = bootstrap_address(bootstrap)
    chosen = server_partitions(bootstrap, topic, partitions)
    with Interrupted() as interrupted:
        if group is None:
            _consume_assigned(
                address, topic, chosen, start or BEGINNING, follow, idle_timeout, limit, writer, interrupted
            )
        else:
            _consume_group(
                address,
                topic,
                chosen,
                bool(partitions),
                group,
                start,
                follow,
                idle_timeout,
                limit,
                writer,
                interrupted,
            )
    writer.finish()


def _consume_assigned(
    address: str,
    topic: str,
    partitions: list[int],
    start: Position,
    follow: bool,
    idle_timeout: float | None,
    limit: int,
    writer: MessageWriter,
    interrupted: Interrupted,
) -> None:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(consumer_config(address, None))
    try:
        spans = server_spans(consumer, address, topic, partitions, start, END)
        read = ServerRead(
            consumer,
            topic,
            address,
            None if follow else {s.partition: s.end for s in spans},
            interrupted,
            idle_timeout if follow else None,
        )
        for span in spans:
            read.add(span.partition, span.start)
        consumer.assign([TopicPartition(topic, s.partition, s.start) for s in spans])
        for message in read.messages():
            writer.write(message)
            limit -= 1
            if limit == 0 or writer.closed:
                break
    finally:
        consumer.close()
    if not follow:
        summary(writer.count, spans, topic)


def _consume_group(
    address: str,
    topic: str,
    partitions: list[int],
    only_some: bool,
    group: str,
    start: Position | None,
    follow: bool,
    idle_timeout: float | None,
    limit: int,
    writer: MessageWriter,
    interrupted: Interrupted,
) -> None:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(consumer_config(address, group))
    read: ServerRead | None = None
    try:
        spans = {
            s.partition: s for s in server_spans(consumer, address, topic, partitions, start or END, END)
        }
        try:
            committed = {
                tp.partition: tp.offset
                for tp in consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
            }
        except KafkaException as exc:
            raise kafka_error(exc, bootstrap=address, topic=topic) from None
        read = ServerRead(
            consumer,
            topic,
            address,
            None if follow else {p: s.end for p, s in spans.items()},
            interrupted,
            idle_timeout if follow else None,
        )
        current = read

        def first_offset(partition: int) -> int:
            span = spans[partition]
            if start is not None:
                return span.start
            stored = committed.get(partition, -1001)
            return min(max(stored, span.low), span.high) if stored >= 0 else span.low

        def on_assign(c: Any, assigned: list[Any]) -> None:
            mine = [tp for tp in assigned if tp.partition in spans]
            for tp in mine:
                tp.offset = first_offset(tp.partition)
                current.add(tp.partition, tp.offset)
            if not mine:
                current.assigned = True
            c.assign(mine)

        def on_revoke(c: Any, revoked: list[Any]) -> None:
            _commit(c, topic, current, [tp.partition for tp in revoked])
            for tp in revoked:
                current.remove(tp.partition)

        if only_some:  # explicit partitions: no group rebalancing, just this group's offsets
            consumer.assign([TopicPartition(topic, p, first_offset(p)) for p in partitions])
            for p in partitions:
                read.add(p, first_offset(p))
        else:
            consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
        last_commit = time.monotonic()
        for message in read.messages():
            writer.write(message)
            limit -= 1
            if limit == 0 or writer.closed:
                break
            if follow and time.monotonic() - last_commit > COMMIT_INTERVAL_S:
                _commit(consumer, topic, read, list(read.positions), asynchronous=True)
                last_commit = time.monotonic()
        _commit(consumer, topic, read, list(read.positions))
    finally:
        consumer.close()
    if not follow:
        summary(writer.count, list(spans.values()), topic)


def _commit(
    consumer: Any, topic: str, read: ServerRead, partitions: list[int], *, asynchronous: bool = False
) -> None:
    from confluent_kafka import KafkaException, TopicPartition

    offsets = [TopicPartition(topic, p, read.positions[p]) for p in partitions if p in read.positions]
    if not offsets:
        return
    try:
        consumer.commit(offsets=offsets, asynchronous=asynchronous)
    except KafkaException as exc:
        raise kafka_error(exc, bootstrap=read.bootstrap, topic=topic) from None
