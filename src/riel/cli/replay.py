"""``riel replay``: re-read a window of a topic's history (between two times or offsets), partition by
partition or merged into one timeline, to stdout or into another topic, from a server or from a
stopped server's data directory. Made for incident response: "what happened between 09:00 and 09:05?"
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from riel.cli.consume import (
    BEGINNING,
    END,
    Interrupted,
    Message,
    MessageWriter,
    Position,
    Span,
    check_target,
    consumer_config,
    data_dir_spans,
    iso_time,
    parse_time,
    read_data_dir_span,
    read_server_spans,
    server_partitions,
    server_spans,
)
from riel.cli.output import EXIT_FAILED, EXIT_USAGE, CliError, console, err_console, print_json
from riel.cli.produce import Outgoing, Sender
from riel.cli.target import bootstrap_address, bootstrap_option, data_dir_option, open_data_dir

SOURCE_HEADER = "riel.replay.source"


def _bound(time_spec: str | None, offset: int | None, name: str, default: Position) -> Position:
    if time_spec is not None and offset is not None:
        raise CliError(f"--{name}-time and --{name}-offset exclude each other", exit_code=EXIT_USAGE)
    if time_spec is not None:
        return Position("time", parse_time(time_spec))
    if offset is not None:
        return Position("offset", offset)
    return default


def _ordered(streams: list[Iterator[Message]], order: str) -> Iterator[Message]:
    if order == "time":  # each partition's own order is kept: merge only compares their heads
        return heapq.merge(*streams, key=lambda m: (m.timestamp, m.partition))
    return itertools.chain.from_iterable(streams)


@click.command(short_help="Re-read a window of a topic's history (times or offsets), or copy it.")
@click.argument("topic")
@click.option(
    "--from-time",
    default=None,
    metavar="TIME",
    help="Start at the first message at or after TIME (ISO 8601 UTC unless an offset is "
    "given, ms since the epoch, or -1h / -15m).",
)
@click.option(
    "--to-time", default=None, metavar="TIME", help="Stop before the first message at or after TIME."
)
@click.option("--from-offset", type=int, default=None, help="Start at this offset (in every partition read).")
@click.option("--to-offset", type=int, default=None, help="Stop before this offset (exclusive).")
@click.option(
    "--partition", "-p", "partitions", type=int, multiple=True, help="Only this partition (repeatable)."
)
@click.option(
    "--order",
    type=click.Choice(["partition", "time"]),
    default="partition",
    show_default=True,
    help="partition: each partition in offset order, one after the other; time: one timeline "
    "merged by timestamp (each partition still in offset order).",
)
@click.option(
    "--format",
    "template",
    default=None,
    metavar="TEMPLATE",
    help="kcat-style output template (see `riel consume --help`).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, as `riel consume --json`.")
@click.option(
    "--to",
    "target_topic",
    default=None,
    metavar="TOPIC",
    help="Write the messages into TOPIC (keys, values, headers and timestamps kept; same "
    "partition when TOPIC has it) instead of printing them.",
)
@click.option(
    "--source-header",
    is_flag=True,
    help=f"With --to: add a {SOURCE_HEADER} header (topic/partition@offset) to each copy.",
)
@click.option("--dry-run", is_flag=True, help="Only report which offsets the window covers.")
@bootstrap_option
@data_dir_option
def replay(
    topic: str,
    from_time: str | None,
    to_time: str | None,
    from_offset: int | None,
    to_offset: int | None,
    partitions: tuple[int, ...],
    order: str,
    template: str | None,
    as_json: bool,
    target_topic: str | None,
    source_header: bool,
    dry_run: bool,
    bootstrap: str | None,
    data_dir: Path | None,
) -> None:
    """Re-read TOPIC's history between two points (times or offsets; start inclusive, end exclusive),
    in order per partition. With --data-dir it reads a stopped server's files (and with --to it can
    copy them into a running server's topic).

    \b
    riel replay orders --from-time 2026-11-28T09:00Z --to-time 2026-11-28T09:05Z
    riel replay orders --from-time -1h --order time --json | jq 'select(.key == "table-4")'
    riel replay orders --from-offset 1200 --to-offset 1300 -p 2 --to orders-debug
    """
    if data_dir is None or target_topic is None:
        check_target(bootstrap, data_dir)
    if as_json and template is not None:
        raise CliError("--json and --format exclude each other", exit_code=EXIT_USAGE)
    if target_topic is not None and (as_json or template is not None):
        raise CliError("--to writes to a topic; --json and --format are for printing", exit_code=EXIT_USAGE)
    if target_topic == topic and data_dir is None:  # (from a data directory it is a restore)
        raise CliError("replaying a topic into itself would read its own copies", exit_code=EXIT_USAGE)
    start = _bound(from_time, from_offset, "from", BEGINNING)
    end = _bound(to_time, to_offset, "to", END)

    options = ReplayOptions(topic, order, template, as_json, target_topic, source_header, dry_run, bootstrap)
    with Interrupted() as interrupted:
        if data_dir is not None:
            with open_data_dir(data_dir) as logs:
                spans = data_dir_spans(logs, topic, partitions, start, end, str(data_dir))
                streams = [read_data_dir_span(logs, topic, s) for s in spans if s.start < s.end]
                source_partitions = logs.topics()[topic].partitions
                _deliver(options, spans, streams, source_partitions, interrupted)
            return
        address = bootstrap_address(bootstrap)
        chosen = server_partitions(bootstrap, topic, partitions)
        source_partitions = len(server_partitions(bootstrap, topic, None)) if partitions else len(chosen)
        from confluent_kafka import Consumer

        probe = Consumer(consumer_config(address, None))
        try:
            spans = server_spans(probe, address, topic, chosen, start, end)
        finally:
            probe.close()
        live = [s for s in spans if s.start < s.end]
        # One consumer per partition (created when its turn comes), so a --order time merge can look
        # at every partition's next message, and --order partition reads one partition at a time.
        streams = [read_server_spans(address, topic, [s], interrupted) for s in live]
        _deliver(options, spans, streams, source_partitions, interrupted)


@dataclass(frozen=True)
class ReplayOptions:
    topic: str
    order: str
    template: str | None
    as_json: bool
    target_topic: str | None
    source_header: bool
    dry_run: bool
    bootstrap: str | None


def _deliver(
    options: ReplayOptions,
    spans: Sequence[Span],
    streams: list[Iterator[Message]],
    source_partitions: int,
    interrupted: Interrupted,
) -> None:
    topic, order, template, as_json = options.topic, options.order, options.template, options.as_json
    target_topic, source_header, bootstrap = options.target_topic, options.source_header, options.bootstrap
    window = [
        {"partition": s.partition, "from_offset": s.start, "to_offset": s.end, "messages": s.end - s.start}
        for s in spans
    ]
    if options.dry_run:
        if as_json:
            print_json({"topic": topic, "partitions": window})
        else:
            for w in window:
                console.print(
                    f"partition {w['partition']}: offsets [{w['from_offset']}, {w['to_offset']}) "
                    f"= {w['messages']} message(s)"
                )
        return
    counts: dict[int, list[Message]] = {}  # first and last message per partition, for the summary

    def seen(message: Message) -> None:
        pair = counts.setdefault(message.partition, [message, message])
        pair[1] = message

    if target_topic is not None:
        _copy(
            topic,
            _ordered(streams, order),
            target_topic,
            source_header,
            bootstrap,
            seen,
            interrupted,
            source_partitions,
        )
    else:
        writer = MessageWriter(as_json, template, flush_each=False)
        current: int | None = None
        for message in _ordered(streams, order):
            if writer.closed or interrupted.flag:
                break
            if writer.pretty and order == "partition" and message.partition != current:
                current = message.partition
                span = next(s for s in spans if s.partition == current)
                console.rule(f"{topic} partition {current}, offsets [{span.start}, {span.end})", style="dim")
            writer.write(message)
            seen(message)
        writer.finish()
    if err_console.is_terminal and not as_json:
        for partition, (first, last) in sorted(counts.items()):
            err_console.print(
                f"[dim]partition {partition}: offsets {first.offset}..{last.offset}, "
                f"{iso_time(first.timestamp)} .. {iso_time(last.timestamp)}[/]",
                highlight=False,
            )
        if not counts:
            err_console.print("[dim]no messages in that window[/]")


def _copy(
    topic: str,
    messages: Iterator[Message],
    target_topic: str,
    source_header: bool,
    bootstrap: str | None,
    seen: Any,
    interrupted: Interrupted,
    source_partitions: int,
) -> None:
    from confluent_kafka import KafkaException

    from riel.cli.target import admin_client, kafka_error

    address = bootstrap_address(bootstrap)
    admin = admin_client(bootstrap)
    try:
        metadata = admin.list_topics(timeout=10)
    except KafkaException as exc:
        raise kafka_error(exc, bootstrap=address, topic=target_topic) from None
    found = metadata.topics.get(target_topic)
    if found is None:  # a new scratch topic gets the source's layout, so partitions map one to one
        from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

        (future,) = admin.create_topics(
            [NewTopic(target_topic, source_partitions)], request_timeout=20
        ).values()
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            raise kafka_error(exc, bootstrap=address, topic=target_topic) from None
        err_console.print(f"[dim]created topic {target_topic} with {source_partitions} partition(s)[/]")
    target_partitions = len(found.partitions) if found is not None else source_partitions
    sender = Sender(address, 30.0)
    try:
        for message in messages:
            if interrupted.flag:
                break
            headers = message.headers
            if source_header:
                source = f"{topic}/{message.partition}@{message.offset}".encode()
                headers = (*headers, (SOURCE_HEADER, source))
            sender.send(
                target_topic,
                Outgoing(
                    value=message.value,
                    key=message.key,
                    headers=headers,
                    partition=message.partition if message.partition < target_partitions else None,
                    timestamp=message.timestamp if message.timestamp >= 0 else None,
                ),
            )
            seen(message)
    finally:
        sender.finish()
    colour = "red" if sender.failed else "green"
    err_console.print(
        f"[{colour}]replayed {sender.delivered} of {sender.sent} message(s) "
        f"from {topic} into {target_topic}[/]",
        highlight=False,
    )
    for error in sender.errors:
        err_console.print(f"  [red]{error}[/]", highlight=False)
    if sender.failed:
        raise CliError(f"{sender.failed} message(s) were not copied to {target_topic}", exit_code=EXIT_FAILED)
