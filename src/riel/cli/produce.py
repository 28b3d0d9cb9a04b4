"""``riel produce``: send lines (plain, ``key<SEP>value``, or JSON objects) from stdin or a file to a
topic, with a progress bar for big files and a summary that scripts can trust (exit 1 if any message
was not delivered)."""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import click

from riel.cli.output import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_USAGE, CliError, err_console, print_json
from riel.cli.target import admin_client, bootstrap_address, bootstrap_option, client_config, kafka_error

MAX_ERRORS_SHOWN: Final = 10
PROGRESS_MIN_BYTES: Final = 1 << 20  # smaller files are sent before a bar would be worth drawing

Header = tuple[str, bytes | None]


@dataclass
class Outgoing:
    value: bytes | None
    key: bytes | None = None
    headers: tuple[Header, ...] = ()
    partition: int | None = None
    timestamp: int | None = None


class Sender:
    """A confluent-kafka producer (acks=all, idempotent, Java-compatible key partitioning) that counts
    deliveries and keeps the first few errors."""

    def __init__(self, bootstrap: str, timeout_s: float) -> None:
        from confluent_kafka import Producer

        self.bootstrap = bootstrap
        self.producer = Producer(
            {
                **client_config(bootstrap),
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "partitioner": "murmur2_random",
                "message.timeout.ms": int(timeout_s * 1000),
            }
        )
        self.timeout_s = timeout_s
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.errors: list[str] = []
        self.partitions: Counter[int] = Counter()

    def _on_delivery(self, error: Any, msg: Any) -> None:
        if error is None:
            self.delivered += 1
            self.partitions[msg.partition()] += 1
            return
        self.failed += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(f"{error.str()} ({error.name()})")

    def send(self, topic: str, message: Outgoing) -> None:
        extra: dict[str, Any] = {}
        if message.partition is not None:
            extra["partition"] = message.partition
        if message.timestamp is not None:
            extra["timestamp"] = message.timestamp
        if message.headers:
            extra["headers"] = list(message.headers)
        while True:
            try:
                self.producer.produce(
                    topic, value=message.value, key=message.key, on_delivery=self._on_delivery, **extra
                )
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                self.producer.poll(0.1)
        self.sent += 1
        if self.sent % 1000 == 0:
            self.producer.poll(0)

    def finish(self) -> None:
        """Wait (bounded by the message timeout) for every delivery report."""
        remaining = self.producer.flush(self.timeout_s + 5)
        if remaining:
            self.failed += remaining
            self.errors.append(f"{remaining} message(s) still undelivered after {self.timeout_s + 5:.0f}s")

    def report(self, topic: str) -> dict[str, object]:
        return {
            "topic": topic,
            "sent": self.sent,
            "delivered": self.delivered,
            "failed": self.failed,
            "partitions": {str(p): n for p, n in sorted(self.partitions.items())},
            "errors": self.errors,
        }


def parse_headers(specs: tuple[str, ...]) -> tuple[Header, ...]:
    headers: list[Header] = []
    for spec in specs:
        name, equals, value = spec.partition("=")
        if not equals or not name:
            raise CliError(f"bad header {spec!r}: expected NAME=VALUE", exit_code=EXIT_USAGE)
        headers.append((name, value.encode()))
    return tuple(headers)


def json_to_bytes(value: object, field: str) -> bytes | None:
    """The inverse of ``consume --json``: text as UTF-8, ``{"base64": ...}`` decoded, null as null;
    any other JSON value (number, list, object) as its compact JSON text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"], str):
        try:
            return base64.b64decode(value["base64"], validate=True)
        except binascii.Error:
            raise ValueError(f"{field}: invalid base64") from None
    return json.dumps(value, separators=(",", ":")).encode()


_JSON_FIELDS: Final = {"key", "value", "headers", "partition", "timestamp"}


def parse_json_line(line: bytes) -> Outgoing:
    from riel.cli.consume import parse_time

    document = json.loads(line)
    if not isinstance(document, dict):
        raise ValueError('expected a JSON object like {"key": "k", "value": "v"}')
    unknown = sorted(set(document) - _JSON_FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(_JSON_FIELDS))})")
    headers: list[Header] = []
    raw_headers = document.get("headers") or {}
    pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
    for pair in pairs:
        name, values = pair
        for value in values if isinstance(values, list) else [values]:
            headers.append((str(name), json_to_bytes(value, f"header {name}")))
    partition = document.get("partition")
    if partition is not None and not isinstance(partition, int):
        raise ValueError("partition must be an integer")
    timestamp = document.get("timestamp")
    if isinstance(timestamp, str):
        timestamp = parse_time(timestamp)
    elif timestamp is not None and not isinstance(timestamp, int):
        raise ValueError("timestamp must be milliseconds since the epoch or an ISO 8601 string")
    return Outgoing(
        value=json_to_bytes(document.get("value"), "value"),
        key=json_to_bytes(document.get("key"), "key"),
        headers=tuple(headers),
        partition=partition,
        timestamp=timestamp,
    )


def _lines(stream: IO[bytes], advance: Any) -> Iterator[bytes]:
    for line in stream:
        advance(len(line))
        yield line[:-1] if line.endswith(b"\n") else line


@click.command(short_help="Send lines of stdin or a file to a topic (plain, KEY<SEP>VALUE or JSON).")
@click.argument("topic")
@click.option(
    "--file",
    "-f",
    "path",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    default=None,
    help="Read the messages from FILE (default: stdin), one per line.",
)
@click.option(
    "--key-separator",
    "-k",
    default=None,
    metavar="SEP",
    help="Each line is KEY<SEP>VALUE (split at the first SEP; a line without it has no key).",
)
@click.option(
    "--header",
    "-H",
    "header_specs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Add this header to every message (repeatable).",
)
@click.option(
    "--partition",
    "-p",
    type=click.IntRange(min=0),
    default=None,
    help="Send to this partition (default: by key, or spread when there is no key).",
)
@click.option(
    "--json",
    "json_lines",
    is_flag=True,
    help='Each line is a JSON object {"key", "value", "headers", "partition", "timestamp"} '
    "(as `riel consume --json` prints them); the summary is printed as JSON too.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds a message may wait for delivery before it counts as failed.",
)
@bootstrap_option
def produce(
    topic: str,
    path: Path | None,
    key_separator: str | None,
    header_specs: tuple[str, ...],
    partition: int | None,
    json_lines: bool,
    timeout: float,
    bootstrap: str | None,
) -> None:
    """Send lines of stdin (or --file) to TOPIC, one message per line. Exit code 1 if any message was
    not delivered.

    \b
    printf 'k1:hello\\nk2:world\\n' | riel produce greetings -k : -H source=cli
    riel produce orders --json -f orders.jsonl
    """
    if json_lines and key_separator is not None:
        raise CliError('--key-separator does not apply to --json lines (they carry a "key")', exit_code=2)
    headers = parse_headers(header_specs)
    separator = key_separator.encode() if key_separator else None
    address = bootstrap_address(bootstrap)
    admin = admin_client(bootstrap)
    from confluent_kafka import KafkaException

    try:
        metadata = admin.list_topics(timeout=10)
    except KafkaException as exc:
        raise kafka_error(exc, bootstrap=address, topic=topic) from None
    known = metadata.topics.get(topic)
    if known is None:
        if not json_lines and err_console.is_terminal:
            err_console.print(
                f"[dim]topic {topic!r} does not exist yet: the server creates it on first use[/]"
            )
    elif partition is not None and partition >= len(known.partitions):
        raise CliError(
            f"topic {topic!r} has {len(known.partitions)} partition(s); there is no partition {partition}",
            hint=f"add partitions with `riel topic alter {topic} --partitions N`",
            exit_code=EXIT_NOT_FOUND,
        )

    stream: IO[bytes]
    if path is None or str(path) == "-":
        stream, size = sys.stdin.buffer, 0
    else:
        try:
            stream, size = open(path, "rb"), path.stat().st_size  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}", exit_code=EXIT_USAGE) from None
    sender = Sender(address, timeout)
    bad_line: str | None = None
    try:
        show_progress = not json_lines and size >= PROGRESS_MIN_BYTES and err_console.is_terminal
        bad_line = _send_all(
            sender, topic, stream, separator, headers, partition, json_lines, size if show_progress else 0
        )
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
        sender.finish()
    report = sender.report(topic)
    if bad_line is not None:
        report["input_error"] = bad_line
    if json_lines:
        print_json(report)
    else:
        spread = ", ".join(f"{p}: {n}" for p, n in sorted(sender.partitions.items()))
        colour = "red" if sender.failed else "green"
        err_console.print(
            f"[{colour}]{sender.delivered} of {sender.sent} message(s) delivered to {topic}[/]"
            + (f" (partition {spread})" if spread else "")
            + (f", [red]{sender.failed} failed[/]" if sender.failed else ""),
            highlight=False,
        )
        for error in sender.errors:
            err_console.print(f"  [red]{error}[/]", highlight=False)
    if bad_line is not None:
        raise CliError(bad_line, hint="nothing after that line was sent", exit_code=EXIT_USAGE)
    if sender.failed:
        raise CliError(
            f"{sender.failed} of {sender.sent} message(s) were not delivered",
            hint="see the errors above; rerunning sends the whole input again",
            exit_code=EXIT_FAILED,
        )


def _send_all(
    sender: Sender,
    topic: str,
    stream: IO[bytes],
    separator: bytes | None,
    headers: tuple[Header, ...],
    partition: int | None,
    json_lines: bool,
    progress_total: int,
) -> str | None:
    """Send every line; returns the description of the first bad JSON line (nothing after it is sent)."""
    from contextlib import nullcontext

    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    progress = (
        Progress(
            TextColumn("producing"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        )
        if progress_total
        else None
    )
    with progress if progress is not None else nullcontext():
        task = progress.add_task("produce", total=progress_total) if progress is not None else None

        def advance(n: int) -> None:
            if progress is not None and task is not None:
                progress.advance(task, n)

        for number, line in enumerate(_lines(stream, advance), start=1):
            if json_lines:
                if not line.strip():
                    continue
                try:
                    message = parse_json_line(line)
                except ValueError as exc:  # json.JSONDecodeError is a ValueError
                    return f"line {number}: {exc}"
                message.headers = headers + message.headers
                if message.partition is None:
                    message.partition = partition
            else:
                key: bytes | None = None
                value = line
                if separator is not None and separator in line:
                    key, value = line.split(separator, 1)
                message = Outgoing(value=value, key=key, headers=headers, partition=partition)
            sender.send(topic, message)
    return None
