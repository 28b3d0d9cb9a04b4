"""Where a CLI command acts: a running server over the Kafka protocol (``--bootstrap``, the default),
or, for read-only commands, a data directory no server is using (``--data-dir``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from riel.cli.output import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_UNREACHABLE, EXIT_USAGE, CliError

DEFAULT_BOOTSTRAP: Final = "127.0.0.1:9092"
PROBE_TIMEOUT_S: Final = 5.0

F = TypeVar("F", bound=Callable[..., Any])


def bootstrap_option(function: F) -> F:
    return click.option(
        "--bootstrap",
        "-b",
        default=None,
        envvar="RIEL_BOOTSTRAP",
        help=f"Kafka address of the server (default {DEFAULT_BOOTSTRAP}; any Kafka-compatible broker works).",
    )(function)


def data_dir_option(function: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Read this data directory directly instead of asking a server (only when no server runs).",
    )(function)


def bootstrap_address(bootstrap: str | None) -> str:
    return bootstrap or DEFAULT_BOOTSTRAP


def unreachable(bootstrap: str, detail: str = "") -> CliError:
    return CliError(
        f"no Kafka server answered at {bootstrap}{': ' + detail if detail else ''}",
        hint="start one with `riel serve`, point at it with --bootstrap HOST:PORT (or RIEL_BOOTSTRAP), "
        "or read a stopped server's data with --data-dir DIR",
        exit_code=EXIT_UNREACHABLE,
    )


def unknown_topic(topic: str, where: str) -> CliError:
    return CliError(
        f"topic {topic!r} does not exist on {where}",
        hint="list the topics with `riel topic list`, or create it with `riel topic create`",
        exit_code=EXIT_NOT_FOUND,
    )


def admin_client(bootstrap: str | None, **extra: str | int | float | bool) -> Any:
    """A confluent-kafka ``AdminClient`` that has been heard from (else ``CliError`` unreachable).
    ``extra``: more librdkafka settings (``security.protocol``, ``sasl.username``...)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    address = bootstrap_address(bootstrap)
    admin = AdminClient(client_config(address, **extra))
    try:
        admin.list_topics(timeout=PROBE_TIMEOUT_S)
    except KafkaException as exc:
        raise unreachable(address, str(exc.args[0].str() if exc.args else exc)) from None
    return admin


ClientConfig = dict[str, str | int | float | bool]


def client_config(bootstrap: str, **extra: str | int | float | bool) -> ClientConfig:
    """librdkafka settings every CLI client shares: quiet logs, fail fast when nobody answers."""
    return {
        "bootstrap.servers": bootstrap,
        "socket.connection.setup.timeout.ms": int(PROBE_TIMEOUT_S * 1000),
        "log_level": 2,  # critical only: connection refused (an error, 3) is reported by us, with a hint
        **extra,
    }


@contextmanager
def open_data_dir(data_dir: Path) -> Iterator[Any]:
    """The ``LogManager`` of a data directory, opened (and recovered if needed) under its lock.
    ``CliError`` with a hint when a server or SDK process holds it."""
    from riel.config import FlushPolicy
    from riel.errors import DataDirLockedError
    from riel.storage.log_manager import LogManager

    if not data_dir.is_dir():
        raise CliError(f"no data directory at {data_dir}", exit_code=EXIT_USAGE)
    logs = LogManager(data_dir, FlushPolicy.parse("os"), {}, owner_note=f"riel CLI (pid {os.getpid()})")
    try:
        logs.open()
    except DataDirLockedError as exc:
        raise CliError(
            str(exc),
            hint="ask the server instead: drop --data-dir and pass --bootstrap",
            exit_code=EXIT_USAGE,
        ) from None
    try:
        yield logs
    finally:
        logs.close()


_APPEND_ONLY_HINT: Final = (
    "the topic is append-only (riel.append.only=true): its records can never be deleted, and the "
    "setting cannot be turned off"
)
_UNREACHABLE_ERRORS: Final = frozenset({"_TRANSPORT", "_TIMED_OUT", "_ALL_BROKERS_DOWN", "_RESOLVE"})


def kafka_error(exc: BaseException, *, bootstrap: str, topic: str | None = None) -> CliError:
    """A confluent-kafka ``KafkaException`` (or ``KafkaError``) as a ``CliError`` with the broker's
    message, the hint that fixes it and the matching exit code."""
    error: Any = exc.args[0] if exc.args else exc
    name = str(error.name()) if hasattr(error, "name") else type(exc).__name__
    text = str(error.str()) if hasattr(error, "str") else str(exc)
    subject = f"topic {topic!r}: " if topic and topic not in text else ""
    if name == "UNKNOWN_TOPIC_OR_PART" and topic is not None:
        return unknown_topic(topic, bootstrap)
    if name in _UNREACHABLE_ERRORS:
        return unreachable(bootstrap, text)
    hints = {
        "TOPIC_ALREADY_EXISTS": "pick another name, or pass --if-not-exists",
        "TOPIC_DELETION_DISABLED": _APPEND_ONLY_HINT,
        "POLICY_VIOLATION": _APPEND_ONLY_HINT,
        "INVALID_CONFIG": "`riel topic describe TOPIC` lists the config names and their current values",
        "INVALID_PARTITIONS": "partitions can only be added, and a topic needs at least one",
        "TOPIC_EXCEPTION": "topic names use ASCII letters, digits, '.', '_' and '-' (at most 249)",
        "INVALID_REPLICATION_FACTOR": "a single riel server keeps one copy: use --replication-factor 1",
    }
    return CliError(f"{subject}{text} ({name})", hint=hints.get(name), exit_code=EXIT_FAILED)


@contextmanager
def open_data_dir_with_offsets(data_dir: Path) -> Iterator[tuple[Any, Any]]:
    """``(LogManager, OffsetsStore)`` of a data directory, both opened under its lock (see
    ``open_data_dir``): committed consumer-group offsets next to the partitions they point into."""
    from riel.config import FlushPolicy
    from riel.storage.offsets_store import OffsetsStore

    with open_data_dir(data_dir) as logs:
        offsets = OffsetsStore(data_dir, FlushPolicy.parse("os"))
        offsets.open()
        try:
            yield logs, offsets
        finally:
            offsets.close()
