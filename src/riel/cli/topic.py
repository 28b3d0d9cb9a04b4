"""``riel topic create/list/describe/alter/delete``: topics of a running server over the Kafka admin
API (any Kafka-compatible broker), or, for ``list`` and ``describe``, of a stopped server's data
directory."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import click

from riel.cli.output import EXIT_USAGE, CliError, console, emit, json_option, table
from riel.cli.target import (
    admin_client,
    bootstrap_address,
    bootstrap_option,
    data_dir_option,
    kafka_error,
    open_data_dir,
    unknown_topic,
)

REQUEST_TIMEOUT_S: Final = 20.0
RESULT_TIMEOUT_S: Final = 30.0


@click.group()
def topic() -> None:
    """Create, list, describe, alter and delete topics."""


# ---------------------------------------------------------------------------------------------------
# Gathering facts: one dict shape for both sources, so --json looks the same either way
#
# {"name", "topic_id", "partitions": [{"partition", "start_offset", "end_offset", "messages",
#  "size_bytes"}], "messages", "size_bytes", "configs": {name: {"value", "default", "source"}}}


def _parse_configs(specs: Sequence[str]) -> dict[str, str]:
    configs: dict[str, str] = {}
    for spec in specs:
        name, equals, value = spec.partition("=")
        if not equals or not name:
            raise CliError(
                f"bad config {spec!r}: expected NAME=VALUE (e.g. retention.ms=86400000)", exit_code=EXIT_USAGE
            )
        configs[name.strip()] = value.strip()
    return configs


def _summed(partitions: list[dict[str, Any]], key: str) -> int | None:
    values = [p[key] for p in partitions]
    return None if any(v is None for v in values) else sum(values)


def _finish(
    name: str, topic_id: str | None, partitions: list[dict[str, Any]], configs: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": name,
        "topic_id": topic_id,
        "partition_count": len(partitions),
        "messages": _summed(partitions, "messages"),
        "size_bytes": _summed(partitions, "size_bytes"),
        "partitions": partitions,
        "configs": configs,
    }


def _data_dir_topics(data_dir: Path, names: Sequence[str] | None) -> list[dict[str, Any]]:
    from riel.config import TOPIC_CONFIG_DEFAULTS

    out = []
    with open_data_dir(data_dir) as logs:
        topics = logs.topics()
        for name in names if names is not None else sorted(topics):
            info = topics.get(name)
            if info is None:
                raise unknown_topic(name, str(data_dir))
            partitions = []
            for index in range(info.partitions):
                log = logs.partition(name, index)
                start, end = log.log_start_offset, log.high_watermark
                partitions.append(
                    {
                        "partition": index,
                        "start_offset": start,
                        "end_offset": end,
                        "messages": end - start,
                        "size_bytes": log.size_bytes(),
                    }
                )
            effective = logs.effective_config(name)
            configs = {
                key: {
                    "value": value,
                    "default": key not in info.configs,
                    "source": "DEFAULT_CONFIG" if key not in info.configs else "DYNAMIC_TOPIC_CONFIG",
                }
                for key, value in sorted({**TOPIC_CONFIG_DEFAULTS, **effective}.items())
            }
            out.append(_finish(name, str(info.topic_id), partitions, configs))
    return out


def _server_topics(bootstrap: str | None, names: Sequence[str] | None) -> list[dict[str, Any]]:
    from confluent_kafka import KafkaException, TopicPartition
    from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, just not marked so
        ConfigResource,
        ConfigSource,
        OffsetSpec,
        ResourceType,
    )

    address = bootstrap_address(bootstrap)
    admin = admin_client(bootstrap)
    try:
        metadata = admin.list_topics(timeout=REQUEST_TIMEOUT_S)
    except KafkaException as exc:
        raise kafka_error(exc, bootstrap=address) from None
    wanted = list(names) if names is not None else sorted(metadata.topics)
    for name in wanted:
        if name not in metadata.topics:
            raise unknown_topic(name, address)
    if not wanted:
        return []
    counts = {name: len(metadata.topics[name].partitions) for name in wanted}
    requests = [TopicPartition(n, p) for n in wanted for p in range(counts[n])]
    offsets: dict[tuple[str, int, str], int] = {}
    configs: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        specs = (("start", OffsetSpec.earliest()), ("end", OffsetSpec.latest()))  # type: ignore[no-untyped-call]
        for label, spec in specs:
            if requests:
                futures = admin.list_offsets({tp: spec for tp in requests}, request_timeout=REQUEST_TIMEOUT_S)
                for tp, future in futures.items():
                    offsets[(tp.topic, tp.partition, label)] = future.result(timeout=RESULT_TIMEOUT_S).offset
        futures = admin.describe_configs(
            [ConfigResource(ResourceType.TOPIC, n) for n in wanted], request_timeout=REQUEST_TIMEOUT_S
        )
        for resource, future in futures.items():
            entries = future.result(timeout=RESULT_TIMEOUT_S)
            configs[resource.name] = {
                key: {"value": e.value, "default": bool(e.is_default), "source": ConfigSource(e.source).name}
                for key, e in sorted(entries.items())
            }
    except KafkaException as exc:
        raise kafka_error(exc, bootstrap=address) from None
    topic_ids = _topic_ids(admin, wanted) if names is not None else {}
    out = []
    for name in wanted:
        partitions = []
        for p in range(counts[name]):
            start, end = offsets[(name, p, "start")], offsets[(name, p, "end")]
            partitions.append(
                {
                    "partition": p,
                    "start_offset": start,
                    "end_offset": end,
                    "messages": end - start,
                    "size_bytes": None,
                }
            )
        out.append(_finish(name, topic_ids.get(name), partitions, configs.get(name, {})))
    return out


def _topic_ids(admin: Any, names: Sequence[str]) -> dict[str, str]:
    """Topic ids (Metadata v10+); empty when the broker or client cannot say."""
    from confluent_kafka import KafkaException, TopicCollection

    ids = {}
    try:
        futures = admin.describe_topics(TopicCollection(list(names)), request_timeout=REQUEST_TIMEOUT_S)
        for name, future in futures.items():
            topic_id = future.result(timeout=RESULT_TIMEOUT_S).topic_id
            high, low = topic_id.get_most_significant_bits(), topic_id.get_least_significant_bits()
            ids[name] = str(uuid.UUID(int=((high % 2**64) << 64) | (low % 2**64)))
    except (KafkaException, AttributeError):
        return {}
    return ids


def _gather(
    bootstrap: str | None, data_dir: Path | None, names: Sequence[str] | None
) -> list[dict[str, Any]]:
    if bootstrap is not None and data_dir is not None:
        raise CliError("--bootstrap and --data-dir exclude each other", exit_code=EXIT_USAGE)
    if data_dir is not None:
        return _data_dir_topics(data_dir, names)
    return _server_topics(bootstrap, names)


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)


def _say(text: str) -> None:
    console.print(text, soft_wrap=True)


def _non_default(configs: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {key: entry["value"] for key, entry in configs.items() if not entry["default"]}


# ---------------------------------------------------------------------------------------------------
# Commands


@topic.command("list")
@json_option
@bootstrap_option
@data_dir_option
def list_topics(as_json: bool, bootstrap: str | None, data_dir: Path | None) -> None:
    """Topics with their partitions, size, messages and the configs that differ from the defaults.
    (Sizes are only known with --data-dir: the Kafka protocol does not report them.)"""
    topics = _gather(bootstrap, data_dir, None)
    data = [
        {
            "name": t["name"],
            "partitions": t["partition_count"],
            "messages": t["messages"],
            "size_bytes": t["size_bytes"],
            "configs": _non_default(t["configs"]),
        }
        for t in topics
    ]

    def render() -> None:
        if not data:
            _say("no topics yet: `riel topic create NAME` (or produce to one) makes one")
            return
        rows = [
            [
                t["name"],
                t["partitions"],
                t["messages"],
                _size(t["size_bytes"]),
                " ".join(f"{k}={v}" for k, v in t["configs"].items()),
            ]
            for t in data
        ]
        console.print(table(["topic", "partitions", "messages", "size", "configs (non-default)"], rows))

    emit(data, as_json, render)


@topic.command()
@click.argument("names", nargs=-1, required=True)
@json_option
@bootstrap_option
@data_dir_option
def describe(names: tuple[str, ...], as_json: bool, bootstrap: str | None, data_dir: Path | None) -> None:
    """Per-partition start and end offsets, and every config (non-default ones marked)."""
    topics = _gather(bootstrap, data_dir, names)

    def render() -> None:
        for t in topics:
            _say(
                f"[bold]{t['name']}[/]  id {t['topic_id'] or '-'}  {t['partition_count']} partition(s), "
                f"{t['messages']} message(s), {_size(t['size_bytes'])}"
            )
            rows = [
                [p["partition"], p["start_offset"], p["end_offset"], p["messages"], _size(p["size_bytes"])]
                for p in t["partitions"]
            ]
            console.print(table(["partition", "start", "end", "messages", "size"], rows))
            config_rows = [
                [("* " if not e["default"] else "  ") + key, e["value"], e["source"].removesuffix("_CONFIG")]
                for key, e in t["configs"].items()
            ]
            console.print(table(["config (* = set on the topic)", "value", "source"], config_rows))
            console.print()

    emit(topics if len(topics) > 1 else topics[0], as_json, render)


@topic.command()
@click.argument("name")
@click.option("--partitions", "-p", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--replication-factor",
    "-r",
    type=click.IntRange(min=-1),
    default=-1,
    help="Copies of each partition (default: the broker's; riel keeps one).",
)
@click.option(
    "--config",
    "-c",
    "config_specs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A topic config, e.g. -c retention.ms=86400000 -c cleanup.policy=compact.",
)
@click.option("--if-not-exists", is_flag=True, help="Succeed if the topic already exists.")
@json_option
@bootstrap_option
def create(
    name: str,
    partitions: int,
    replication_factor: int,
    config_specs: tuple[str, ...],
    if_not_exists: bool,
    as_json: bool,
    bootstrap: str | None,
) -> None:
    """Create topic NAME."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    configs = _parse_configs(config_specs)
    address = bootstrap_address(bootstrap)
    admin = admin_client(bootstrap)
    created = True
    try:
        (future,) = admin.create_topics(
            [NewTopic(name, partitions, replication_factor, config=configs)],
            request_timeout=REQUEST_TIMEOUT_S,
        ).values()
        future.result(timeout=RESULT_TIMEOUT_S)
    except KafkaException as exc:
        if not (if_not_exists and exc.args and exc.args[0].name() == "TOPIC_ALREADY_EXISTS"):
            raise kafka_error(exc, bootstrap=address, topic=name) from None
        created = False
    result = {"topic": name, "created": created, "partitions": partitions, "configs": configs}
    emit(
        result,
        as_json,
        lambda: _say(
            f"created topic [bold]{name}[/] with {partitions} partition(s)"
            + (" " + " ".join(f"{k}={v}" for k, v in configs.items()) if configs else "")
            if created
            else f"topic [bold]{name}[/] already exists"
        ),
    )


@topic.command()
@click.argument("name")
@click.option("--config", "-c", "config_specs", multiple=True, metavar="NAME=VALUE", help="Set a config.")
@click.option(
    "--delete-config",
    "-d",
    "deleted",
    multiple=True,
    metavar="NAME",
    help="Remove a config from the topic (back to the broker default).",
)
@click.option(
    "--partitions",
    "-p",
    type=click.IntRange(min=1),
    default=None,
    help="Grow the topic to this many partitions.",
)
@json_option
@bootstrap_option
def alter(
    name: str,
    config_specs: tuple[str, ...],
    deleted: tuple[str, ...],
    partitions: int | None,
    as_json: bool,
    bootstrap: str | None,
) -> None:
    """Change topic NAME's configs (IncrementalAlterConfigs: the others stay) or add partitions."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, just not marked so
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        NewPartitions,
        ResourceType,
    )

    configs = _parse_configs(config_specs)
    if not configs and not deleted and partitions is None:
        raise CliError(
            "nothing to change",
            hint="pass -c NAME=VALUE, --delete-config NAME or --partitions N",
            exit_code=EXIT_USAGE,
        )
    address = bootstrap_address(bootstrap)
    admin = admin_client(bootstrap)
    try:
        metadata = admin.list_topics(timeout=REQUEST_TIMEOUT_S)
        if name not in metadata.topics:
            raise unknown_topic(name, address)
        if configs or deleted:
            entries = [
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()
            ]
            entries += [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in deleted]
            resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
            (future,) = admin.incremental_alter_configs(
                [resource], request_timeout=REQUEST_TIMEOUT_S
            ).values()
            future.result(timeout=RESULT_TIMEOUT_S)
        if partitions is not None and partitions != len(metadata.topics[name].partitions):
            (future,) = admin.create_partitions(
                [NewPartitions(name, partitions)], request_timeout=REQUEST_TIMEOUT_S
            ).values()
            future.result(timeout=RESULT_TIMEOUT_S)
    except KafkaException as exc:
        raise kafka_error(exc, bootstrap=address, topic=name) from None
    result = {"topic": name, "set": configs, "deleted": list(deleted), "partitions": partitions}
    changes = [f"{k}={v}" for k, v in configs.items()] + [f"{k} (default again)" for k in deleted]
    if partitions is not None:
        changes.append(f"{partitions} partitions")
    emit(result, as_json, lambda: _say(f"altered topic [bold]{name}[/]: {', '.join(changes)}"))


@topic.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@bootstrap_option
def delete(names: tuple[str, ...], yes: bool, as_json: bool, bootstrap: str | None) -> None:
    """Delete topics and all their messages (asks first on a terminal, unless --yes)."""
    from confluent_kafka import KafkaException

    address = bootstrap_address(bootstrap)
    admin = admin_client(bootstrap)
    try:
        metadata = admin.list_topics(timeout=REQUEST_TIMEOUT_S)
    except KafkaException as exc:
        raise kafka_error(exc, bootstrap=address) from None
    for name in names:
        if name not in metadata.topics:
            raise unknown_topic(name, address)
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete {', '.join(names)} and every message in it from {address}?", abort=True)
    futures = admin.delete_topics(list(names), request_timeout=REQUEST_TIMEOUT_S)
    failures: dict[str, CliError] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=RESULT_TIMEOUT_S)
        except KafkaException as exc:
            failures[name] = kafka_error(exc, bootstrap=address, topic=name)
    if failures:
        deleted = [n for n in names if n not in failures]
        if deleted and not as_json:
            _say(f"deleted topic(s) {', '.join(deleted)}")
        raise next(iter(failures.values()))
    emit({"deleted": list(names)}, as_json, lambda: _say(f"deleted topic(s) {', '.join(names)}"))
