"""``riel group list/describe/reset-offsets/delete``: consumer groups of a running server over the Kafka
admin API (any Kafka-compatible broker), or, for ``list`` and ``describe``, the committed offsets in a
stopped server's data directory."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import click
from rich.markup import escape
from rich.table import Table

from riel.cli.output import (
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CliError,
    console,
    emit,
    json_option,
    table,
)
from riel.cli.target import (
    admin_client,
    bootstrap_address,
    bootstrap_option,
    data_dir_option,
    kafka_error,
    open_data_dir_with_offsets,
    unknown_topic,
)

REQUEST_TIMEOUT_S: Final = 20.0
RESULT_TIMEOUT_S: Final = 30.0

# Kafka's names for the states (ConsumerGroupState's enum names are librdkafka's spelling).
_STATE_NAMES: Final = {
    "UNKNOWN": "Unknown",
    "PREPARING_REBALANCING": "PreparingRebalance",
    "COMPLETING_REBALANCING": "CompletingRebalance",
    "STABLE": "Stable",
    "DEAD": "Dead",
    "EMPTY": "Empty",
}

TP = tuple[str, int]


@click.group()
def group() -> None:
    """List, describe (members, assignments, lag), reset the offsets of, and delete consumer groups."""


# ---------------------------------------------------------------------------------------------------
# Gathering facts: one dict shape for both sources, so --json looks the same either way
#
# describe: {"group", "state", "protocol_type", "protocol", "coordinator", "members": [{"member_id",
#   "group_instance_id", "client_id", "host", "assignment": [{"topic", "partition"}]}],
#   "partitions": [{"topic", "partition", "committed", "end", "lag", "member_id", "client_id", "host"}],
#   "total_lag"}


def _check_target(bootstrap: str | None, data_dir: Path | None) -> None:
    if bootstrap is not None and data_dir is not None:
        raise CliError("--bootstrap and --data-dir exclude each other", exit_code=EXIT_USAGE)


def _state_name(state: Any) -> str:
    name = str(getattr(state, "name", state))
    return _STATE_NAMES.get(name, name)


def _unknown_group(group_id: str, where: str) -> CliError:
    return CliError(
        f"consumer group {group_id!r} does not exist on {where}",
        hint="`riel group list` lists the groups",
        exit_code=EXIT_NOT_FOUND,
    )


def _result(future: Any, address: str) -> Any:
    from confluent_kafka import KafkaException

    try:
        return future.result(timeout=RESULT_TIMEOUT_S)
    except KafkaException as exc:
        raise kafka_error(exc, bootstrap=address) from None


def _error_name(exc: BaseException) -> str:
    error = exc.args[0] if exc.args else None
    return str(error.name()) if error is not None and hasattr(error, "name") else type(exc).__name__


def _partition_rows(
    committed: dict[TP, int],
    ends: dict[TP, int | None],
    owners: dict[TP, dict[str, Any]],
) -> tuple[list[dict[str, Any]], int]:
    rows = []
    total = 0
    for tp in sorted(set(committed) | set(owners)):
        current = committed.get(tp)
        end = ends.get(tp)
        lag = end - current if current is not None and end is not None else None
        total += lag or 0
        owner = owners.get(tp, {})
        rows.append(
            {
                "topic": tp[0],
                "partition": tp[1],
                "committed": current,
                "end": end,
                "lag": lag,
                "member_id": owner.get("member_id"),
                "client_id": owner.get("client_id"),
                "host": owner.get("host"),
            }
        )
    return rows, total


def _end_offsets(admin: Any, partitions: Iterable[TP], *, earliest: bool = False) -> dict[TP, int | None]:
    """End (or start) offsets; ``None`` for a partition the broker cannot answer for (topic deleted)."""
    from confluent_kafka import KafkaException, TopicPartition
    from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

    wanted = sorted(set(partitions))
    if not wanted:
        return {}
    spec = OffsetSpec.earliest() if earliest else OffsetSpec.latest()  # type: ignore[no-untyped-call]
    futures = admin.list_offsets(
        {TopicPartition(t, p): spec for t, p in wanted}, request_timeout=REQUEST_TIMEOUT_S
    )
    out: dict[TP, int | None] = {}
    for tp, future in futures.items():
        try:
            out[(tp.topic, tp.partition)] = int(future.result(timeout=RESULT_TIMEOUT_S).offset)
        except KafkaException:
            out[(tp.topic, tp.partition)] = None
    return out


def _committed_offsets(admin: Any, group_id: str, address: str) -> dict[TP, int]:
    from confluent_kafka import ConsumerGroupTopicPartitions

    futures = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group_id)], request_timeout=REQUEST_TIMEOUT_S
    )
    (future,) = futures.values()
    result = _result(future, address)
    return {
        (tp.topic, tp.partition): int(tp.offset)
        for tp in result.topic_partitions or []
        if tp.error is None and tp.offset >= 0
    }


def _describe_one(admin: Any, group_id: str, address: str) -> Any:
    (future,) = admin.describe_consumer_groups([group_id], request_timeout=REQUEST_TIMEOUT_S).values()
    return _result(future, address)


def _server_describe(bootstrap: str | None, group_id: str) -> dict[str, Any]:
    address = bootstrap_address(bootstrap)
    admin = admin_client(bootstrap)
    description = _describe_one(admin, group_id, address)
    committed = _committed_offsets(admin, group_id, address)
    state = _state_name(description.state)
    if state == "Dead" and not description.members and not committed:
        raise _unknown_group(group_id, address)
    members = []
    owners: dict[TP, dict[str, Any]] = {}
    for m in description.members:
        assigned = sorted(
            (tp.topic, tp.partition) for tp in (m.assignment.topic_partitions if m.assignment else [])
        )
        member = {
            "member_id": m.member_id,
            "group_instance_id": m.group_instance_id,
            "client_id": m.client_id,
            "host": m.host,
            "assignment": [{"topic": t, "partition": p} for t, p in assigned],
        }
        members.append(member)
        for tp in assigned:
            owners[tp] = member
    ends = _end_offsets(admin, set(committed) | set(owners))
    rows, total = _partition_rows(committed, ends, owners)
    coordinator = description.coordinator
    return {
        "group": group_id,
        "state": state,
        "protocol_type": "" if description.is_simple_consumer_group else "consumer",
        "protocol": description.partition_assignor or None,
        "coordinator": (
            {"id": coordinator.id, "host": coordinator.host, "port": coordinator.port}
            if coordinator is not None
            else None
        ),
        "members": members,
        "partitions": rows,
        "total_lag": total,
    }


def _data_dir_describe(data_dir: Path, group_id: str) -> dict[str, Any]:
    with open_data_dir_with_offsets(data_dir) as (logs, offsets):
        stored = offsets.group_offsets(group_id)
        if not stored:
            raise _unknown_group(group_id, str(data_dir))
        committed = {tp: c.offset for tp, c in stored.items()}
        ends: dict[TP, int | None] = {}
        for topic, partition in committed:
            log = logs.partition(topic, partition)
            ends[(topic, partition)] = None if log is None else int(log.high_watermark)
    rows, total = _partition_rows(committed, ends, {})
    return {
        "group": group_id,
        "state": None,  # membership lives in a running server only
        "protocol_type": None,
        "protocol": None,
        "coordinator": None,
        "members": [],
        "partitions": rows,
        "total_lag": total,
    }


def _say(text: str) -> None:
    console.print(text, soft_wrap=True, highlight=False)


def _dash(value: object) -> object:
    return "-" if value is None else value


_NUMERIC: Final = frozenset({"partition", "committed", "end", "lag", "current", "new", "change"})


def _table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    """``output.table`` with offset columns right-aligned even when the first row shows "-"."""
    result = table(columns, rows)
    for column in result.columns:
        if column.header in _NUMERIC:
            column.justify = "right"
    return result


# ---------------------------------------------------------------------------------------------------
# list, describe


@group.command("list")
@json_option
@bootstrap_option
@data_dir_option
def list_groups(as_json: bool, bootstrap: str | None, data_dir: Path | None) -> None:
    """Consumer groups with their state and type. With --data-dir: the groups that have committed
    offsets (a stopped server knows no members or states)."""
    _check_target(bootstrap, data_dir)
    data: list[dict[str, Any]]
    if data_dir is not None:
        with open_data_dir_with_offsets(data_dir) as (_, offsets):
            data = [
                {
                    "group": name,
                    "state": None,
                    "type": None,
                    "committed_partitions": len(offsets.group_offsets(name)),
                }
                for name in sorted(offsets.groups())
            ]
    else:
        address = bootstrap_address(bootstrap)
        admin = admin_client(bootstrap)
        listing = _result(admin.list_consumer_groups(request_timeout=REQUEST_TIMEOUT_S), address)
        if listing.errors:
            raise kafka_error(listing.errors[0], bootstrap=address)
        data = [
            {
                "group": g.group_id,
                "state": _state_name(g.state),
                "type": "simple" if g.is_simple_consumer_group else "consumer",
            }
            for g in sorted(listing.valid, key=lambda g: str(g.group_id))
        ]

    def render() -> None:
        if not data:
            _say("no consumer groups yet")
            return
        if data_dir is not None:
            rows = [[g["group"], g["committed_partitions"]] for g in data]
            console.print(table(["group", "committed partitions"], rows))
        else:
            console.print(
                table(["group", "state", "type"], [[g["group"], g["state"], g["type"]] for g in data])
            )

    emit(data, as_json, render)


@group.command()
@click.argument("group_id", metavar="GROUP")
@json_option
@bootstrap_option
@data_dir_option
def describe(group_id: str, as_json: bool, bootstrap: str | None, data_dir: Path | None) -> None:
    """State, protocol, members (client id, host, assigned partitions) and, per partition, the committed
    offset, the end offset and the lag between them, with the total lag."""
    _check_target(bootstrap, data_dir)
    info = (
        _data_dir_describe(data_dir, group_id)
        if data_dir is not None
        else _server_describe(bootstrap, group_id)
    )

    def render() -> None:
        head = f"[bold]{escape(group_id)}[/]"
        if info["state"] is not None:
            protocol = "/".join(x for x in (info["protocol_type"], info["protocol"]) if x) or "-"
            coordinator = info["coordinator"]
            where = f"  coordinator {coordinator['host']}:{coordinator['port']}" if coordinator else ""
            head += f"  state [bold]{info['state']}[/]  protocol {escape(protocol)}{escape(where)}"
        else:
            head += "  (from a data directory: committed offsets only, no members or state)"
        _say(head)
        if info["members"]:
            member_rows = [
                [
                    m["client_id"],
                    m["host"],
                    ", ".join(f"{a['topic']}/{a['partition']}" for a in m["assignment"]) or "-",
                    m["member_id"],
                ]
                for m in info["members"]
            ]
            console.print(table(["client id", "host", "assigned partitions", "member id"], member_rows))
        elif info["state"] is not None:
            _say("no active members")
        if info["partitions"]:
            rows = [
                [
                    p["topic"],
                    p["partition"],
                    _dash(p["committed"]),
                    _dash(p["end"]),
                    _dash(p["lag"]),
                    _dash(p["client_id"]),
                    _dash(p["host"]),
                ]
                for p in info["partitions"]
            ]
            console.print(
                _table(["topic", "partition", "committed", "end", "lag", "client id", "host"], rows)
            )
        _say(f"total lag: [bold]{info['total_lag']}[/]")

    emit(info, as_json, render)


# ---------------------------------------------------------------------------------------------------
# reset-offsets


def _parse_topic_specs(specs: Sequence[str], counts: dict[str, int], address: str) -> list[TP]:
    """``TOPIC`` (every partition) or ``TOPIC:0,2`` into sorted (topic, partition) pairs."""
    wanted: set[TP] = set()
    for spec in specs:
        name, colon, numbers = spec.partition(":")
        if name not in counts:
            raise unknown_topic(name, address)
        if not colon:
            wanted.update((name, p) for p in range(counts[name]))
            continue
        for number in numbers.split(","):
            if not number.strip().isdigit():
                raise CliError(
                    f"bad --topic {spec!r}: expected TOPIC or TOPIC:PARTITION[,PARTITION...]",
                    exit_code=EXIT_USAGE,
                )
            partition = int(number)
            if partition >= counts[name]:
                raise CliError(
                    f"topic {name!r} has no partition {partition} (it has {counts[name]})",
                    exit_code=EXIT_USAGE,
                )
            wanted.add((name, partition))
    return sorted(wanted)


def _parse_datetime(text: str) -> int:
    """An ISO 8601 time (local time when it names no zone) as epoch milliseconds."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(
            f"bad --to-datetime {text!r}: expected ISO 8601, e.g. 2026-11-28T09:00:00Z or 2026-11-28 09:00",
            exit_code=EXIT_USAGE,
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # Kafka's tool reads a zoneless time as local time too
    return int(moment.timestamp() * 1000)


def _offsets_for_time(admin: Any, partitions: Sequence[TP], timestamp_ms: int, address: str) -> dict[TP, int]:
    """The first offset whose timestamp is at or after ``timestamp_ms``; -1 where there is none."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

    spec = OffsetSpec.for_timestamp(timestamp_ms)
    futures = admin.list_offsets(
        {TopicPartition(t, p): spec for t, p in partitions}, request_timeout=REQUEST_TIMEOUT_S
    )
    return {(tp.topic, tp.partition): int(_result(f, address).offset) for tp, f in futures.items()}


def _plan(
    strategy: str,
    amount: int | None,
    partitions: Sequence[TP],
    committed: dict[TP, int],
    starts: dict[TP, int | None],
    ends: dict[TP, int | None],
    by_time: dict[TP, int],
) -> list[dict[str, Any]]:
    missing_current = [tp for tp in partitions if tp not in committed]
    if strategy == "shift-by" and missing_current:
        raise CliError(
            "--shift-by moves committed offsets, but these partitions have none: "
            + ", ".join(f"{t}/{p}" for t, p in missing_current),
            hint="reset them with --to-earliest, --to-latest or --to-offset (choose them with --topic T:P)",
            exit_code=EXIT_USAGE,
        )
    plan = []
    for tp in partitions:
        start, end = starts.get(tp), ends.get(tp)
        if start is None or end is None:
            raise CliError(f"the server has no partition {tp[0]}/{tp[1]}", exit_code=EXIT_NOT_FOUND)
        current = committed.get(tp)
        if strategy == "earliest":
            target = start
        elif strategy == "latest":
            target = end
        elif strategy == "offset":
            assert amount is not None
            target = amount
        elif strategy == "shift-by":
            assert amount is not None and current is not None
            target = current + amount
        else:  # datetime: no record at or after that time means "after everything"
            found = by_time.get(tp, -1)
            target = end if found < 0 else found
        new = min(max(target, start), end)  # Kafka's tool clamps into the partition's range too
        entry = {
            "topic": tp[0],
            "partition": tp[1],
            "current": current,
            "new": new,
            "start": start,
            "end": end,
        }
        if new != target:
            entry["note"] = f"{target} is outside {start}..{end}: clamped"
        plan.append(entry)
    return plan


def _strategy(
    to_earliest: bool, to_latest: bool, to_offset: int | None, to_datetime: str | None, shift_by: int | None
) -> tuple[str, int | None]:
    chosen = [
        (name, value)
        for name, on, value in (
            ("earliest", to_earliest, None),
            ("latest", to_latest, None),
            ("offset", to_offset is not None, to_offset),
            ("datetime", to_datetime is not None, None),
            ("shift-by", shift_by is not None, shift_by),
        )
        if on
    ]
    if len(chosen) != 1:
        raise CliError(
            "pick exactly one of --to-earliest, --to-latest, --to-offset N, --to-datetime ISO, --shift-by N",
            exit_code=EXIT_USAGE,
        )
    return chosen[0]


@group.command("reset-offsets")
@click.argument("group_id", metavar="GROUP")
@click.option(
    "--topic",
    "topic_specs",
    multiple=True,
    metavar="TOPIC[:P,P...]",
    help="Reset this topic (all its partitions, or the listed ones). Repeatable.",
)
@click.option("--all-topics", is_flag=True, help="Reset every partition the group has committed offsets for.")
@click.option("--to-earliest", is_flag=True, help="To the first offset still in the log.")
@click.option("--to-latest", is_flag=True, help="To the end of the log (skip everything there now).")
@click.option("--to-offset", type=int, default=None, metavar="N", help="To offset N (clamped into the log).")
@click.option(
    "--to-datetime",
    default=None,
    metavar="ISO",
    help="To the first record at or after this time (ISO 8601; local time without a zone).",
)
@click.option(
    "--shift-by", type=int, default=None, metavar="N", help="Move the committed offsets by N (+/-)."
)
@click.option("--dry-run", is_flag=True, help="Print the plan (current and new offsets); change nothing.")
@json_option
@bootstrap_option
def reset_offsets(
    group_id: str,
    topic_specs: tuple[str, ...],
    all_topics: bool,
    to_earliest: bool,
    to_latest: bool,
    to_offset: int | None,
    to_datetime: str | None,
    shift_by: int | None,
    dry_run: bool,
    as_json: bool,
    bootstrap: str | None,
) -> None:
    """Move GROUP's committed offsets. Like Kafka, only while the group has no active members: stop its
    consumers first (a --dry-run works any time)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition

    strategy, amount = _strategy(to_earliest, to_latest, to_offset, to_datetime, shift_by)
    if bool(topic_specs) == all_topics:
        raise CliError("pass --topic TOPIC[:PARTITIONS] (repeatable) or --all-topics", exit_code=EXIT_USAGE)
    timestamp_ms = _parse_datetime(to_datetime) if to_datetime is not None else None
    address = bootstrap_address(bootstrap)
    admin = admin_client(bootstrap)
    description = _describe_one(admin, group_id, address)
    state = _state_name(description.state)
    active = len(description.members)
    if active and not dry_run:
        clients = ", ".join(sorted({f"{m.client_id}@{m.host}" for m in description.members}))
        raise CliError(
            f"consumer group {group_id!r} has {active} active member(s) ({clients}; state {state}): "
            "offsets can only be reset while the group is empty, as in Kafka",
            hint="stop its consumers (they may commit as they leave), then run this again; "
            "--dry-run shows the plan meanwhile",
            exit_code=EXIT_FAILED,
        )
    committed = _committed_offsets(admin, group_id, address)
    if all_topics:
        partitions = sorted(committed)
        if not partitions:
            raise CliError(
                f"consumer group {group_id!r} has no committed offsets, so --all-topics means nothing",
                hint="name the topics with --topic TOPIC",
                exit_code=EXIT_NOT_FOUND,
            )
    else:
        try:
            metadata = admin.list_topics(timeout=REQUEST_TIMEOUT_S)
        except KafkaException as exc:
            raise kafka_error(exc, bootstrap=address) from None
        counts = {name: len(t.partitions) for name, t in metadata.topics.items()}
        partitions = _parse_topic_specs(topic_specs, counts, address)
    try:
        starts = _end_offsets(admin, partitions, earliest=True)
        ends = _end_offsets(admin, partitions)
        by_time = (
            _offsets_for_time(admin, partitions, timestamp_ms, address) if timestamp_ms is not None else {}
        )
    except KafkaException as exc:
        raise kafka_error(exc, bootstrap=address) from None
    plan = _plan(strategy, amount, partitions, committed, starts, ends, by_time)

    if not dry_run:
        request = ConsumerGroupTopicPartitions(
            group_id, [TopicPartition(e["topic"], e["partition"], e["new"]) for e in plan]
        )
        (future,) = admin.alter_consumer_group_offsets([request], request_timeout=REQUEST_TIMEOUT_S).values()
        try:
            result = future.result(timeout=RESULT_TIMEOUT_S)
        except KafkaException as exc:
            name = _error_name(exc)
            if name in ("UNKNOWN_MEMBER_ID", "REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION"):
                raise CliError(
                    f"consumer group {group_id!r} gained members while resetting: nothing was changed",
                    hint="stop its consumers, then run this again",
                ) from None
            raise kafka_error(exc, bootstrap=address) from None
        failed = [tp for tp in result.topic_partitions or [] if tp.error is not None]
        if failed:
            raise CliError(
                "the server refused some offsets: "
                + "; ".join(f"{tp.topic}/{tp.partition}: {tp.error.str()}" for tp in failed),
            )

    data = {
        "group": group_id,
        "state": state,
        "active_members": active,
        "strategy": strategy if amount is None else f"{strategy} {amount}",
        "dry_run": dry_run,
        "applied": not dry_run,
        "partitions": plan,
    }

    def render() -> None:
        rows = [
            [
                e["topic"],
                e["partition"],
                _dash(e["current"]),
                e["new"],
                "-" if e["current"] is None else f"{e['new'] - e['current']:+d}",
                e.get("note", ""),
            ]
            for e in plan
        ]
        console.print(_table(["topic", "partition", "current", "new", "change", "note"], rows))
        if dry_run:
            note = (
                f" (the group has {active} active member(s): a real reset is refused now)" if active else ""
            )
            _say(f"dry run: nothing changed{escape(note)}; run again without --dry-run to apply")
        else:
            _say(f"reset {len(plan)} partition(s) of consumer group [bold]{escape(group_id)}[/]")

    emit(data, as_json, render)


# ---------------------------------------------------------------------------------------------------
# delete


@group.command()
@click.argument("group_ids", metavar="GROUP...", nargs=-1, required=True)
@json_option
@bootstrap_option
def delete(group_ids: tuple[str, ...], as_json: bool, bootstrap: str | None) -> None:
    """Delete consumer groups and their committed offsets (only groups without active members)."""
    from confluent_kafka import KafkaException

    address = bootstrap_address(bootstrap)
    admin = admin_client(bootstrap)
    futures = admin.delete_consumer_groups(list(group_ids), request_timeout=REQUEST_TIMEOUT_S)
    results: list[dict[str, Any]] = []
    first_error: CliError | None = None
    for group_id in group_ids:
        try:
            futures[group_id].result(timeout=RESULT_TIMEOUT_S)
            results.append({"group": group_id, "deleted": True, "error": None})
        except KafkaException as exc:
            name = _error_name(exc)
            results.append({"group": group_id, "deleted": False, "error": name})
            if name == "GROUP_ID_NOT_FOUND":
                error = _unknown_group(group_id, address)
            elif name == "NON_EMPTY_GROUP":
                error = CliError(
                    f"consumer group {group_id!r} still has active members",
                    hint=f"stop its consumers first (`riel group describe {group_id}` lists them)",
                )
            else:
                error = kafka_error(exc, bootstrap=address)
            first_error = first_error or error

    def render() -> None:
        for r in results:
            if r["deleted"]:
                _say(f"deleted consumer group [bold]{escape(r['group'])}[/]")

    emit(results if len(results) > 1 else results[0], as_json, render)
    if first_error is not None:
        raise first_error
