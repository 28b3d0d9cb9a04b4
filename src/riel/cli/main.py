"""``riel`` command line."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from riel.cli.output import console, json_option, print_json
from riel.cli.serve_config import config_option
from riel.config import (
    DEFAULT_DATA_DIR,
    TOPIC_CONFIG_DEFAULTS,
    BrokerConfig,
    ClientQuota,
    FlushPolicy,
    GroupConfig,
    Limits,
)
from riel.errors import DataDirLockedError

if TYPE_CHECKING:
    from riel.storage.hash_chain import VerifyResult


@click.group()
@click.version_option(package_name="riel")
def cli() -> None:
    """Riel: an event log for Python people, embedded or as a Kafka-compatible server."""


@cli.command()
@config_option
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
    "--num-partitions",
    type=int,
    default=1,
    show_default=True,
    envvar="RIEL_NUM_PARTITIONS",
    help="Partitions of auto-created topics.",
)
@click.option(
    "--no-auto-create", is_flag=True, envvar="RIEL_NO_AUTO_CREATE", help="Do not create topics on first use."
)
@click.option(
    "--max-request-bytes",
    type=int,
    default=100 * 1024 * 1024,
    show_default=True,
    envvar="RIEL_MAX_REQUEST_BYTES",
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
    "--transaction-max-timeout-ms",
    type=click.IntRange(min=1),
    default=900_000,
    show_default=True,
    envvar="RIEL_TRANSACTION_MAX_TIMEOUT_MS",
    help="The longest transaction.timeout.ms a transactional producer may ask for "
    "(transaction.max.timeout.ms); longer ones get INVALID_TRANSACTION_TIMEOUT.",
)
@click.option(
    "--transactional-id-expiration-ms",
    type=click.IntRange(min=1),
    default=604_800_000,
    show_default=True,
    envvar="RIEL_TRANSACTIONAL_ID_EXPIRATION_MS",
    help="Forget a transactional id with no transaction open after this long without use "
    "(transactional.id.expiration.ms, 7 days); its next producer starts afresh.",
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
    envvar="RIEL_GROUP_MIN_SESSION_TIMEOUT_MS",
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
@click.option(
    "--listener",
    "listener_specs",
    multiple=True,
    envvar="RIEL_LISTENER",
    metavar="NAME://HOST:PORT",
    help="A listener (repeatable; Kafka's listeners): NAME is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL. "
    "Replaces the PLAINTEXT listener of --host/--port. RIEL_LISTENER takes several, space-separated.",
)
@click.option(
    "--advertised-listener",
    "advertised_listener_specs",
    multiple=True,
    envvar="RIEL_ADVERTISED_LISTENER",
    metavar="NAME://HOST:PORT",
    help="The address clients of listener NAME are told to use (repeatable; advertised.listeners).",
)
@click.option(
    "--ssl-certfile",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    envvar="RIEL_SSL_CERTFILE",
    help="PEM certificate chain of SSL / SASL_SSL listeners.",
)
@click.option(
    "--ssl-keyfile",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    envvar="RIEL_SSL_KEYFILE",
    help="PEM private key of SSL / SASL_SSL listeners.",
)
@click.option(
    "--ssl-cafile",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    envvar="RIEL_SSL_CAFILE",
    help="PEM CA certificates that client certificates must chain to.",
)
@click.option(
    "--ssl-client-auth",
    type=click.Choice(["none", "requested", "required"]),
    default="none",
    show_default=True,
    envvar="RIEL_SSL_CLIENT_AUTH",
    help="Ask clients on SSL listeners for a certificate (ssl.client.auth; needs --ssl-cafile). The "
    "subject of a verified certificate is the principal, e.g. User:CN=alice,O=Acme. SASL_SSL listeners "
    "never ask: the SASL login names the client there.",
)
@click.option(
    "--authorizer",
    "authorizer_enabled",
    is_flag=True,
    envvar="RIEL_AUTHORIZER",
    help="Enforce ACLs (riel acl): a request needs a matching ALLOW ACL and no DENY. Off: all allowed.",
)
@click.option(
    "--super-user",
    "super_users",
    multiple=True,
    envvar="RIEL_SUPER_USER",
    metavar="User:NAME",
    help="A principal the ACLs do not apply to (repeatable; super.users). "
    "RIEL_SUPER_USER takes several, space-separated.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=None,
    envvar="RIEL_MAX_CONNECTIONS",
    help="Most client connections at once; more are closed when accepted (max.connections). "
    "Default: no limit.",
)
@click.option(
    "--max-connections-per-ip",
    type=click.IntRange(min=1),
    default=None,
    envvar="RIEL_MAX_CONNECTIONS_PER_IP",
    help="Most connections from one IP address (max.connections.per.ip). Default: no limit.",
)
@click.option(
    "--connections-max-idle-ms",
    type=click.IntRange(min=0),
    default=600_000,
    show_default=True,
    envvar="RIEL_CONNECTIONS_MAX_IDLE_MS",
    help="Close a connection idle this long (connections.max.idle.ms); 0: never.",
)
@click.option(
    "--frame-deadline-ms",
    type=click.IntRange(min=0),
    default=30_000,
    show_default=True,
    envvar="RIEL_FRAME_DEADLINE_MS",
    help="Close a connection whose request frame is still incomplete this long after it began "
    "(slow-loris); 0: never.",
)
@click.option(
    "--quota-producer-byte-rate",
    type=click.IntRange(min=1),
    default=None,
    envvar="RIEL_QUOTA_PRODUCER_BYTE_RATE",
    help="Bytes per second each client id may produce before being throttled (producer_byte_rate). "
    "Default: no quota.",
)
@click.option(
    "--quota-consumer-byte-rate",
    type=click.IntRange(min=1),
    default=None,
    envvar="RIEL_QUOTA_CONSUMER_BYTE_RATE",
    help="Bytes per second each client id may fetch before being throttled (consumer_byte_rate). "
    "Default: no quota.",
)
@click.option(
    "--quota",
    "quota_specs",
    multiple=True,
    envvar="RIEL_QUOTA",
    metavar="CLIENT_ID:producer=N,consumer=M",
    help="Byte-rate quotas of one client id (repeatable), over the defaults above. "
    "RIEL_QUOTA takes several, space-separated.",
)
@click.option(
    "--quota-window-size-ms",
    type=click.IntRange(min=1),
    default=1_000,
    show_default=True,
    envvar="RIEL_QUOTA_WINDOW_SIZE_MS",
    help="Length of one of the 11 samples quota rates are measured over (quota.window.size.seconds).",
)
@click.option("--log-level", default="INFO", show_default=True, envvar="RIEL_LOG_LEVEL")
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
    transaction_max_timeout_ms: int,
    transactional_id_expiration_ms: int,
    group_initial_rebalance_delay_ms: int,
    group_min_session_timeout_ms: int,
    offsets_retention_minutes: int,
    listener_specs: tuple[str, ...],
    advertised_listener_specs: tuple[str, ...],
    ssl_certfile: Path | None,
    ssl_keyfile: Path | None,
    ssl_cafile: Path | None,
    ssl_client_auth: str,
    authorizer_enabled: bool,
    super_users: tuple[str, ...],
    max_connections: int | None,
    max_connections_per_ip: int | None,
    connections_max_idle_ms: int,
    frame_deadline_ms: int,
    quota_producer_byte_rate: int | None,
    quota_consumer_byte_rate: int | None,
    quota_specs: tuple[str, ...],
    quota_window_size_ms: int,
    log_level: str,
) -> None:
    """Run the Kafka-compatible broker.

    \b
    Each setting comes from, highest first:
      1. its flag                     --port 9093
      2. its environment variable     RIEL_PORT=9093 (--foo-bar reads RIEL_FOO_BAR)
      3. the config file              --config FILE or RIEL_CONFIG=FILE (TOML)
      4. the built-in default         shown after each flag below
    \b
    A config file uses the flag names, with - or _, and a [topic-defaults] table
    of topic configs for topics that do not set their own:
      port = 9092
      data_dir = "/var/lib/riel"        # relative paths: from the file's directory
      flush = "interval:10000:1000"
      no_console = true
      [topic-defaults]
      "retention.ms" = 86400000
    An unknown key is an error (exit code 2) that lists the valid ones.
    """
    from riel.cli.serve_config import loaded_config, value_sources
    from riel.server.app import run

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        flush = FlushPolicy.parse(flush_spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--flush") from None
    from riel.cli.listeners import parse_listeners

    listeners = parse_listeners(listener_specs, advertised_listener_specs, ssl_certfile)
    limits = _limits(
        max_connections,
        max_connections_per_ip,
        connections_max_idle_ms,
        frame_deadline_ms,
        ClientQuota(quota_producer_byte_rate, quota_consumer_byte_rate),
        quota_specs,
        quota_window_size_ms,
    )
    ctx = click.get_current_context()
    file_config = loaded_config(ctx)
    if file_config.path is not None:
        sources = value_sources(ctx, ctx.params)
        logging.getLogger("riel.cli").info(
            "settings from %s: %s",
            file_config.path,
            ", ".join(
                f"{name}={value} ({sources[name]})"
                for name, value in ctx.params.items()
                if sources[name] != "default"
            ),
        )
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
        transaction_max_timeout_ms=transaction_max_timeout_ms,
        transactional_id_expiration_ms=transactional_id_expiration_ms,
        http_enabled=not no_http,
        http_host=http_host,
        http_port=http_port,
        console_enabled=not no_console,
        topic_defaults={**TOPIC_CONFIG_DEFAULTS, **file_config.topic_defaults},
        groups=GroupConfig(
            initial_rebalance_delay_ms=group_initial_rebalance_delay_ms,
            min_session_timeout_ms=group_min_session_timeout_ms,
            offsets_retention_minutes=offsets_retention_minutes,
        ),
        listeners=listeners,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        ssl_cafile=ssl_cafile,
        ssl_client_auth=ssl_client_auth,
        authorizer_enabled=authorizer_enabled,
        super_users=_super_users(super_users),
        limits=limits,
    )
    if ssl_client_auth != "none" and ssl_cafile is None:
        raise click.BadParameter(
            "checking client certificates needs the CA they chain to: add --ssl-cafile CA.pem",
            param_hint="--ssl-client-auth",
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


def _limits(
    max_connections: int | None,
    max_connections_per_ip: int | None,
    idle_ms: int,
    frame_deadline_ms: int,
    default_quota: ClientQuota,
    quota_specs: tuple[str, ...],
    quota_window_size_ms: int,
) -> Limits:
    client_quotas: dict[str, ClientQuota] = {}
    for spec in (item for specs in quota_specs for item in specs.split()):
        try:
            client_id, quota = ClientQuota.parse(spec)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--quota") from None
        client_quotas[client_id] = quota
    return Limits(
        max_connections=max_connections,
        max_connections_per_ip=max_connections_per_ip,
        connections_max_idle_ms=idle_ms,
        frame_deadline_ms=frame_deadline_ms,
        default_quota=default_quota,
        client_quotas=client_quotas,
        quota_window_size_ms=quota_window_size_ms,
    )


def _super_users(specs: tuple[str, ...]) -> list[str]:
    for spec in specs:
        kind, colon, name = spec.partition(":")
        if not (kind and colon and name):
            raise click.BadParameter(
                f"{spec!r}: expected a principal such as User:admin", param_hint="--super-user"
            )
    return list(specs)


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
@json_option
def verify(
    data_dir: Path,
    target: str | None,
    export_heads: Path | None,
    against: Path | None,
    no_lock: bool,
    as_json: bool,
) -> None:
    """Recompute the hash chains of TARGET (topic or topic/partition; default: every partition) and
    name the first offset where the log no longer matches. Exit code 0: all good; 1: a mismatch
    (tampering or damage); 2: usage error or data directory in use. --json prints one document
    (per partition: ok, batches, bytes, head, first_bad_offset, reason, notes; and a summary)."""
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
    names = sorted(set(partitions) | set(pinned_heads), key=_partition_sort_key)
    out = _VerifyOutput(as_json, {name: partitions.get(name) for name in names})
    failures = 0
    heads: dict[str, dict[str, object]] = {}
    try:
        with out:
            for name in names:
                path = partitions.get(name)
                pinned = pinned_heads.get(name)
                if path is None:
                    gone = "partition is gone, but --against has a head for it"
                    out.say(f"FAIL  {name}  {gone}")
                    out.report(name, None, pinned, gone)
                    failures += 1
                    continue
                out.start(name)
                result = verify_partition(
                    path, pinned=pinned if pinned is not None and pinned[0] >= 0 else None
                )
                out.report(name, result, pinned)
                if result.ok:
                    head = (
                        f"head {result.head_offset}:{result.head_hash.hex()[:16]}"
                        if result.batches
                        else "empty"
                    )
                    checked = f", matches exported head {pinned[0]}" if pinned is not None else ""
                    out.say(
                        f"OK    {name}  {result.batches} batches, {result.size_bytes} bytes, {head}{checked}"
                    )
                    heads[name] = {
                        "offset": result.head_offset,
                        "next_offset": result.next_offset,
                        "hash": result.head_hash.hex(),
                    }
                else:
                    failures += 1
                    out.say(f"FAIL  {name}  first bad offset {result.first_bad_offset}: {result.reason}")
                for note in result.notes:
                    out.say(f"      note: {note}")
    finally:
        lock.release()
    if export_heads is not None:
        export_heads.write_text(json.dumps(heads, indent=2, sort_keys=True) + "\n")
        out.say(f"exported {len(heads)} head(s) to {export_heads}")
    total = len(names)
    if as_json:
        print_json(
            {
                "data_dir": str(data_dir),
                "target": target,
                "ok": failures == 0,
                "partitions": out.reports,
                "summary": {
                    "partitions": total,
                    "ok": total - failures,
                    "failed": failures,
                    "against": str(against) if against is not None else None,
                    "exported_heads": str(export_heads) if export_heads is not None else None,
                },
            }
        )
    if failures:
        out.say(f"{failures} of {total} partition(s) FAILED verification")
        sys.exit(1)
    out.say(f"{total} partition(s) verified OK")


class _VerifyOutput:
    """``riel verify``'s output: today's text lines (under a progress bar on a terminal), or, with
    ``--json``, the per-partition reports for one document at the end."""

    def __init__(self, as_json: bool, paths: dict[str, Path | None]) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        self.as_json = as_json
        self.reports: list[dict[str, object]] = []
        self._sizes = {name: _log_bytes(path) for name, path in paths.items()}
        self._progress: Progress | None = None
        if not as_json and sys.stdout.isatty() and console.is_terminal:
            self._progress = Progress(
                TextColumn("verify {task.description}"),
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self._task = self._progress.add_task("", total=sum(self._sizes.values()))

    def __enter__(self) -> _VerifyOutput:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def say(self, line: str) -> None:
        if self.as_json:
            return
        if self._progress is not None:  # above the bar, which stays at the bottom
            self._progress.console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
        else:
            click.echo(line)

    def start(self, name: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=name)

    def report(
        self, name: str, result: VerifyResult | None, pinned: tuple[int, bytes] | None, gone: str = ""
    ) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, self._sizes.get(name, 0))
        topic, _, number = name.rpartition("/")
        entry: dict[str, object] = {"partition": name, "topic": topic, "index": int(number)}
        if result is None:
            entry.update(ok=False, batches=None, bytes=None, segments=None, head_offset=None)
            entry.update(head_hash=None, next_offset=None, first_bad_offset=None, reason=gone, notes=[])
        else:
            has_head = result.ok and result.batches > 0
            entry.update(
                ok=result.ok,
                batches=result.batches,
                bytes=result.size_bytes,
                segments=result.segments,
                head_offset=result.head_offset if has_head else None,
                head_hash=result.head_hash.hex() if has_head else None,
                next_offset=result.next_offset if result.ok else None,
                first_bad_offset=result.first_bad_offset,
                reason=result.reason,
                notes=list(result.notes),
            )
        entry["pinned_offset"] = pinned[0] if pinned is not None else None
        self.reports.append(entry)


def _log_bytes(path: Path | None) -> int:
    """Bytes of a partition's segment files: what the progress bar counts."""
    if path is None:
        return 0
    total = 0
    for segment in path.glob("*.log"):
        with contextlib.suppress(OSError):
            total += segment.stat().st_size
    return total


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


# Each command (group) lives in its own module; they are attached to ``cli`` here.
from riel.cli import acl, bench, consume, group, produce, replay, topic, txn, user  # noqa: E402

for _command in (
    topic.topic,
    produce.produce,
    consume.consume,
    replay.replay,
    group.group,
    user.user,
    acl.acl,
    txn.txn,
    bench.bench,
):
    cli.add_command(_command)


def main() -> None:
    cli()
