"""``riel`` command line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from riel.config import DEFAULT_DATA_DIR, BrokerConfig, FlushPolicy, GroupConfig
from riel.errors import DataDirLockedError


@click.group()
@click.version_option(package_name="riel")
def cli() -> None:
    """Riel: an event log for Python people, embedded or as a Kafka-compatible server."""


@cli.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    envvar="RIEL_DATA_DIR",
    help="Where the log lives.",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, envvar="RIEL_HOST", help="Address to listen on."
)
@click.option("--port", type=int, default=9092, show_default=True, envvar="RIEL_PORT", help="Kafka port.")
@click.option(
    "--advertised-host",
    default=None,
    envvar="RIEL_ADVERTISED_HOST",
    help="Host clients should connect to (default: --host).",
)
@click.option("--advertised-port", type=int, default=None, envvar="RIEL_ADVERTISED_PORT")
@click.option(
    "--flush",
    "flush_spec",
    default="always",
    show_default=True,
    envvar="RIEL_FLUSH",
    help="fsync policy: always (before every ack), interval[:MESSAGES[:MS]], or os.",
)
@click.option(
    "--num-partitions", type=int, default=1, show_default=True, help="Partitions of auto-created topics."
)
@click.option("--no-auto-create", is_flag=True, help="Do not create topics on first use.")
@click.option(
    "--max-request-bytes",
    type=int,
    default=100 * 1024 * 1024,
    show_default=True,
    help="Largest request frame accepted (socket.request.max.bytes).",
)
@click.option(
    "--retention-check-interval-ms",
    type=click.IntRange(min=1),
    default=300_000,
    show_default=True,
    envvar="RIEL_RETENTION_CHECK_INTERVAL_MS",
    help="How often segments past retention.ms / retention.bytes are deleted "
    "(log.retention.check.interval.ms).",
)
@click.option(
    "--group-initial-rebalance-delay-ms",
    type=click.IntRange(min=0),
    default=GroupConfig.initial_rebalance_delay_ms,
    show_default=True,
    envvar="RIEL_GROUP_INITIAL_REBALANCE_DELAY_MS",
    help="How long an empty consumer group waits for more members before its first rebalance "
    "(group.initial.rebalance.delay.ms).",
)
@click.option(
    "--group-min-session-timeout-ms",
    type=click.IntRange(min=1),
    default=GroupConfig.min_session_timeout_ms,
    show_default=True,
    help="Smallest session.timeout.ms a consumer may ask for (group.min.session.timeout.ms).",
)
@click.option(
    "--offsets-retention-minutes",
    type=click.IntRange(min=1),
    default=GroupConfig.offsets_retention_minutes,
    show_default=True,
    envvar="RIEL_OFFSETS_RETENTION_MINUTES",
    help="How long committed offsets of an empty group are kept (offsets.retention.minutes).",
)
@click.option("--log-level", default="INFO", show_default=True)
def serve(
    data_dir: Path,
    host: str,
    port: int,
    advertised_host: str | None,
    advertised_port: int | None,
    flush_spec: str,
    num_partitions: int,
    no_auto_create: bool,
    max_request_bytes: int,
    retention_check_interval_ms: int,
    group_initial_rebalance_delay_ms: int,
    group_min_session_timeout_ms: int,
    offsets_retention_minutes: int,
    log_level: str,
) -> None:
    """Run the Kafka-compatible broker."""
    from riel.server.app import run

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        flush = FlushPolicy.parse(flush_spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--flush") from None
    config = BrokerConfig(
        data_dir=data_dir,
        host=host,
        port=port,
        advertised_host=advertised_host,
        advertised_port=advertised_port,
        flush=flush,
        num_partitions=num_partitions,
        auto_create_topics=not no_auto_create,
        max_request_bytes=max_request_bytes,
        retention_check_interval_ms=retention_check_interval_ms,
        groups=GroupConfig(
            initial_rebalance_delay_ms=group_initial_rebalance_delay_ms,
            min_session_timeout_ms=group_min_session_timeout_ms,
            offsets_retention_minutes=offsets_retention_minutes,
        ),
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        run(config)
    except DataDirLockedError as exc:
        click.echo(f"riel: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"riel: cannot start: {exc}. Is another broker using port {port}? Try --port.", err=True)
        sys.exit(2)


def main() -> None:
    cli()
