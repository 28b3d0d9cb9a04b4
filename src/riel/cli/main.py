"""``riel`` command line."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import NoReturn

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
    "--http-host",
    default="127.0.0.1",
    show_default=True,
    envvar="RIEL_HTTP_HOST",
    help="Address of the web console, /metrics and /health.",
)
@click.option(
    "--http-port",
    type=click.IntRange(min=0, max=65535),
    default=8080,
    show_default=True,
    envvar="RIEL_HTTP_PORT",
    help="Port of the web console, /metrics and /health (0: any free port).",
)
@click.option(
    "--no-http",
    is_flag=True,
    envvar="RIEL_NO_HTTP",
    help="No HTTP listener at all (no console, no /metrics).",
)
@click.option(
    "--no-console",
    is_flag=True,
    envvar="RIEL_NO_CONSOLE",
    help="Serve only /metrics and /health on the HTTP port, not the web console.",
)
@click.option(
    "--log-cleaner-backoff-ms",
    type=click.IntRange(min=1),
    default=15_000,
    show_default=True,
    envvar="RIEL_LOG_CLEANER_BACKOFF_MS",
    help="How often compacted topics (cleanup.policy=compact) are checked for cleaning work "
    "(log.cleaner.backoff.ms).",
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
    http_host: str,
    http_port: int,
    no_http: bool,
    no_console: bool,
    log_cleaner_backoff_ms: int,
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
        log_cleaner_backoff_ms=log_cleaner_backoff_ms,
        http_enabled=not no_http,
        http_host=http_host,
        http_port=http_port,
        console_enabled=not no_console,
        groups=GroupConfig(
            initial_rebalance_delay_ms=group_initial_rebalance_delay_ms,
            min_session_timeout_ms=group_min_session_timeout_ms,
            offsets_retention_minutes=offsets_retention_minutes,
        ),
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    from riel.console.app import build_app

    try:
        run(config, build_app)
    except DataDirLockedError as exc:
        click.echo(f"riel: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(
            f"riel: cannot start: {exc}. Is another process using port {port} or HTTP port {http_port}? "
            "Try --port, --http-port, or --no-http.",
            err=True,
        )
        sys.exit(2)


@cli.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    envvar="RIEL_DATA_DIR",
    help="The data directory to check.",
)
@click.argument("target", required=False)
@click.option(
    "--export-heads",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write each verified partition's head (offset, hash) to this JSON file.",
)
@click.option(
    "--against",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Check that the heads in this JSON file (from --export-heads) still match.",
)
@click.option(
    "--no-lock",
    is_flag=True,
    help="Read the data directory even while a server or SDK process holds it (batches being "
    "written at that moment may show up as an unchained tail).",
)
def verify(
    data_dir: Path, target: str | None, export_heads: Path | None, against: Path | None, no_lock: bool
) -> None:
    """Recompute the hash chains of TARGET (topic or topic/partition; default: every partition) and
    name the first offset where the log no longer matches. Exit code 0: all good; 1: a mismatch
    (tampering or damage); 2: usage error or data directory in use."""
    from riel.errors import DataDirLockedError
    from riel.storage.dir_lock import DataDirLock
    from riel.storage.hash_chain import verify_partition

    if not data_dir.is_dir():
        _usage_error(f"no data directory at {data_dir}")
    partitions = _partition_dirs(data_dir)
    if target is not None:
        topic, slash, number = target.partition("/")
        if slash and not number.isdigit():
            _usage_error(f"bad target {target!r}: expected TOPIC or TOPIC/PARTITION")
        partitions = {
            name: path
            for name, path in partitions.items()
            if name.rsplit("/", 1)[0] == topic and (not slash or name == f"{topic}/{int(number)}")
        }
        if not partitions:
            _usage_error(f"no partition matching {target!r} in {data_dir}")
    pinned_heads: dict[str, tuple[int, bytes]] = {}
    if against is not None:
        pinned_heads = _load_heads(against)
        if target is not None:
            pinned_heads = {name: head for name, head in pinned_heads.items() if name in partitions}
    lock = DataDirLock(data_dir, "riel verify")
    if not no_lock:
        try:
            lock.acquire()
        except DataDirLockedError as exc:
            _usage_error(f"{exc}; stop it first, or pass --no-lock to read it anyway")
    failures = 0
    heads: dict[str, dict[str, object]] = {}
    try:
        for name in sorted(set(partitions) | set(pinned_heads), key=_partition_sort_key):
            path = partitions.get(name)
            if path is None:
                click.echo(f"FAIL  {name}  partition is gone, but --against has a head for it")
                failures += 1
                continue
            pinned = pinned_heads.get(name)
            result = verify_partition(path, pinned=pinned if pinned is not None and pinned[0] >= 0 else None)
            if result.ok:
                head = (
                    f"head {result.head_offset}:{result.head_hash.hex()[:16]}" if result.batches else "empty"
                )
                checked = f", matches exported head {pinned[0]}" if pinned is not None else ""
                click.echo(
                    f"OK    {name}  {result.batches} batches, {result.size_bytes} bytes, {head}{checked}"
                )
                heads[name] = {
                    "offset": result.head_offset,
                    "next_offset": result.next_offset,
                    "hash": result.head_hash.hex(),
                }
            else:
                failures += 1
                click.echo(f"FAIL  {name}  first bad offset {result.first_bad_offset}: {result.reason}")
            for note in result.notes:
                click.echo(f"      note: {note}")
    finally:
        lock.release()
    if export_heads is not None:
        export_heads.write_text(json.dumps(heads, indent=2, sort_keys=True) + "\n")
        click.echo(f"exported {len(heads)} head(s) to {export_heads}")
    total = len(set(partitions) | set(pinned_heads))
    if failures:
        click.echo(f"{failures} of {total} partition(s) FAILED verification")
        sys.exit(1)
    click.echo(f"{total} partition(s) verified OK")


def _usage_error(message: str) -> NoReturn:
    click.echo(f"riel verify: {message}", err=True)
    sys.exit(2)


def _partition_dirs(data_dir: Path) -> dict[str, Path]:
    """``{"topic/partition": directory}`` for every partition directory of ``data_dir``."""
    from riel.storage.log_manager import DELETE_SUFFIX, TOPICS_DIR

    found: dict[str, Path] = {}
    topics = data_dir / TOPICS_DIR
    if not topics.is_dir():
        return found
    for path in topics.iterdir():
        topic, dash, number = path.name.rpartition("-")
        if path.is_dir() and dash and number.isdigit() and not path.name.endswith(DELETE_SUFFIX):
            found[f"{topic}/{int(number)}"] = path
    return found


def _partition_sort_key(name: str) -> tuple[str, int]:
    topic, _, number = name.rpartition("/")
    return topic, int(number) if number.isdigit() else -1


def _load_heads(path: Path) -> dict[str, tuple[int, bytes]]:
    try:
        data = json.loads(path.read_text())
        heads = {
            str(name): (int(head["offset"]), bytes.fromhex(str(head["hash"]))) for name, head in data.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        _usage_error(f"cannot read heads file {path}: {exc}")
    bad = [name for name, (_, digest) in heads.items() if len(digest) != 32]
    if bad:
        _usage_error(f"heads file {path}: hash of {bad[0]} is not 32 bytes")
    return heads


def main() -> None:
    cli()
