"""Where a CLI command acts: a running server over the Kafka protocol (``--bootstrap``, the default),
or, for read-only commands, a data directory no server is using (``--data-dir``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from riel.cli.output import EXIT_NOT_FOUND, EXIT_UNREACHABLE, EXIT_USAGE, CliError

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


def admin_client(bootstrap: str | None) -> Any:
    """A confluent-kafka ``AdminClient`` that has been heard from (else ``CliError`` unreachable)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    address = bootstrap_address(bootstrap)
    admin = AdminClient(client_config(address))
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
        "log_level": 3,  # errors only: connection refused is reported by us, with a hint
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
