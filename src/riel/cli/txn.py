"""``riel txn list/describe``: Kafka transactions, as ``kafka-transactions.sh`` shows them.

With ``--bootstrap`` (the default) the command asks a running broker through ListTransactions and
DescribeTransactions (KIP-664), using kafka-python's ``KafkaAdminClient`` because librdkafka has no
admin API for them; that works against Apache Kafka too. ``--client-config`` takes the usual
librdkafka-style security settings (``security.protocol=SASL_PLAINTEXT``, ``sasl.username=...``) and
maps them to kafka-python's names.

With ``--data-dir`` it reads the transaction coordinator's state file
(``DATA_DIR/transactions/state.log``) without locking or changing anything, so it works next to a
running server too (it then shows the state as of the last fsync'ed change).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import click
from rich.markup import escape

from riel.cli.consume import iso_time
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
from riel.cli.target import PROBE_TIMEOUT_S, bootstrap_address, bootstrap_option, unreachable
from riel.coordinator.transactions import TxnState

REQUEST_TIMEOUT_MS: Final = 20_000
STATE_NAMES: Final = tuple(state.value for state in TxnState)
_RUNNING: Final = frozenset({"Ongoing", "PrepareCommit", "PrepareAbort"})

# librdkafka's names (what `riel acl --client-config` takes) -> kafka-python's.
_CLIENT_SETTINGS: Final = {
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.mechanisms": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
    "ssl.ca.location": "ssl_cafile",
    "ssl.certificate.location": "ssl_certfile",
    "ssl.key.location": "ssl_keyfile",
    "ssl.key.password": "ssl_password",
    "client.id": "client_id",
}
_KAFKA_UNREACHABLE: Final = frozenset(
    {"KafkaTimeoutError", "KafkaConnectionError", "NoBrokersAvailable", "NodeNotReadyError"}
)


@click.group()
def txn() -> None:
    """List and describe transactions (transactional producers: state, producer id/epoch, partitions)."""


# ---------------------------------------------------------------------------------------------------
# Options


def _data_dir_option(function: Any) -> Any:
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Read the transaction state in this data directory instead of asking a server "
        "(read-only: works while a server runs too).",
    )(function)


def _client_config_option(function: Any) -> Any:
    return click.option(
        "--client-config",
        "client_settings",
        multiple=True,
        metavar="KEY=VALUE",
        help="A client setting for --bootstrap (repeatable): security.protocol, sasl.mechanism, "
        "sasl.username, sasl.password, ssl.ca.location, ssl.certificate.location, ssl.key.location, "
        "ssl.key.password, ssl.endpoint.identification.algorithm, client.id.",
    )(function)


def client_settings(items: Sequence[str]) -> dict[str, Any]:
    """``--client-config`` values as kafka-python ``KafkaAdminClient`` keyword arguments."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key:
            raise CliError(f"bad --client-config {item!r}: expected KEY=VALUE", exit_code=EXIT_USAGE)
        if key == "ssl.endpoint.identification.algorithm":
            out["ssl_check_hostname"] = value.lower() == "https"
        elif key in _CLIENT_SETTINGS:
            out[_CLIENT_SETTINGS[key]] = value.upper() if "mechanism" in key else value
        else:
            raise CliError(
                f"unsupported --client-config key {key!r}",
                hint="supported: " + ", ".join([*_CLIENT_SETTINGS, "ssl.endpoint.identification.algorithm"]),
                exit_code=EXIT_USAGE,
            )
    if "security_protocol" in out:
        out["security_protocol"] = str(out["security_protocol"]).upper()
    return out


def _check_target(bootstrap: str | None, data_dir: Path | None, settings: Sequence[str]) -> None:
    if bootstrap is not None and data_dir is not None:
        raise CliError("--bootstrap and --data-dir exclude each other", exit_code=EXIT_USAGE)
    if data_dir is not None and settings:
        raise CliError("--client-config only applies to --bootstrap", exit_code=EXIT_USAGE)


# ---------------------------------------------------------------------------------------------------
# Gathering facts: one dict shape for both sources, so --json looks the same either way
#
# list:     {"transactional_id", "producer_id", "state", "producer_epoch", "start_time_ms", "start_time",
#            "partitions", "coordinator"}  (-b: ListTransactions only has id, producer id and state)
# describe: {"transactional_id", "state", "producer_id", "producer_epoch", "timeout_ms",
#            "start_time_ms", "start_time", "duration_ms", "partitions": [{"topic", "partition"}],
#            "coordinator"}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _partitions(pairs: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"topic": t, "partition": p} for t, p in sorted(pairs)]


def _description(
    transactional_id: str,
    state: str,
    producer_id: int,
    producer_epoch: int,
    timeout_ms: int,
    start_ms: int,
    partitions: Sequence[tuple[str, int]],
    coordinator: int | None,
) -> dict[str, Any]:
    start = start_ms if start_ms >= 0 and state != "Empty" else -1
    return {
        "transactional_id": transactional_id,
        "state": state,
        "producer_id": producer_id,
        "producer_epoch": producer_epoch,
        "timeout_ms": timeout_ms,
        "start_time_ms": start,
        "start_time": iso_time(start),
        "duration_ms": max(0, _now_ms() - start) if start >= 0 and state in _RUNNING else None,
        "partitions": _partitions(partitions),
        "coordinator": coordinator,
    }


def _unknown_txn(transactional_id: str, where: str) -> CliError:
    return CliError(
        f"transactional id {transactional_id!r} does not exist on {where}",
        hint="`riel txn list` lists the transactional ids (one appears once its producer has called "
        "init_transactions)",
        exit_code=EXIT_NOT_FOUND,
    )


def _read_data_dir(data_dir: Path) -> dict[str, dict[str, Any]]:
    """transactional id -> describe-shaped dict, from the state file."""
    from riel.errors import StorageError
    from riel.storage.txn_state_log import read_transaction_states

    if not data_dir.is_dir():
        raise CliError(f"no data directory at {data_dir}", exit_code=EXIT_USAGE)
    try:
        records = read_transaction_states(data_dir)
    except StorageError as exc:
        raise CliError(str(exc)) from None
    out = {}
    for ident, r in records.items():
        try:
            out[ident] = _description(
                ident,
                str(r["state"]),
                int(r["producer_id"]),
                int(r["producer_epoch"]),
                int(r["timeout_ms"]),
                int(r.get("start_ms", -1)),
                [(str(t), int(p)) for t, p in r.get("partitions", [])],
                None,
            )
        except (KeyError, TypeError, ValueError):
            raise CliError(f"{data_dir}: malformed state of transactional id {ident!r}: {r}") from None
    return out


# --- over the Kafka protocol (kafka-python) ---------------------------------------------------------


def _quiet_kafka_logs() -> None:
    """kafka-python logs connection failures itself; we report them once, with a hint."""
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(logging.NullHandler())
    kafka_log.propagate = False


def _kafka_error(exc: BaseException, address: str) -> CliError:
    name = type(exc).__name__
    if name in _KAFKA_UNREACHABLE:
        return unreachable(address, str(exc))
    hints = {
        "TransactionalIdAuthorizationFailedError": "the principal needs DESCRIBE on the transactional id: "
        "`riel acl add --transactional-id ID --operation DESCRIBE ...`",
        "UnsupportedVersionError": "the broker does not support this request (Apache Kafka needs 3.0+, "
        "and 3.8+ for --min-duration-ms)",
    }
    return CliError(f"{exc} ({name})", hint=hints.get(name), exit_code=EXIT_FAILED)


def _admin(bootstrap: str | None, settings: Sequence[str]) -> Any:
    """A kafka-python ``KafkaAdminClient`` that has reached the broker (else ``CliError`` unreachable)."""
    extra = client_settings(settings)
    _quiet_kafka_logs()
    try:
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaConfigurationError, KafkaError
    except ImportError:
        raise CliError(
            "`riel txn` needs the kafka-python package to ask a server (librdkafka has no "
            "ListTransactions/DescribeTransactions)",
            hint="pip install kafka-python, or read a data directory with --data-dir DIR",
        ) from None
    address = bootstrap_address(bootstrap)
    config: dict[str, Any] = {
        "client_id": "riel-cli",
        "request_timeout_ms": REQUEST_TIMEOUT_MS,
        "bootstrap_timeout_ms": int(PROBE_TIMEOUT_S * 1000),
        **extra,
    }
    try:
        return KafkaAdminClient(bootstrap_servers=address, **config)
    except KafkaConfigurationError as exc:
        raise CliError(f"bad --client-config: {exc}", exit_code=EXIT_USAGE) from None
    except KafkaError as exc:
        raise _kafka_error(exc, address) from None


def _server_list(
    bootstrap: str | None,
    settings: Sequence[str],
    states: Sequence[str],
    producer_ids: Sequence[int],
    min_duration_ms: int | None,
) -> list[dict[str, Any]]:
    from kafka.errors import KafkaError

    address = bootstrap_address(bootstrap)
    admin = _admin(bootstrap, settings)
    try:
        by_broker = admin.list_transactions(
            producer_id_filters=list(producer_ids) or None,
            state_filters=list(states) or None,
            duration_filter_ms=min_duration_ms,
        )
    except KafkaError as exc:
        raise _kafka_error(exc, address) from None
    finally:
        admin.close()
    rows = [
        {
            "transactional_id": listing.transactional_id,
            "producer_id": int(listing.producer_id),
            "state": str(getattr(listing.state, "value", listing.state)),
            "producer_epoch": None,
            "start_time_ms": None,
            "start_time": None,
            "partitions": None,
            "coordinator": int(broker_id),
        }
        for broker_id, listings in by_broker.items()
        for listing in listings
    ]
    return sorted(rows, key=lambda row: row["transactional_id"])


def _server_describe(
    bootstrap: str | None, settings: Sequence[str], ids: Sequence[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """(descriptions of the known ids, the unknown ids), both in the order asked."""
    from kafka.errors import KafkaError, TransactionalIdNotFoundError

    address = bootstrap_address(bootstrap)
    admin = _admin(bootstrap, settings)
    found: dict[str, Any] = {}
    missing: list[str] = []
    try:
        try:
            found = dict(admin.describe_transactions(ids))
        except TransactionalIdNotFoundError:
            # kafka-python raises for the first unknown id and drops the rest: ask one by one
            for ident in ids:
                try:
                    found.update(admin.describe_transactions([ident]))
                except TransactionalIdNotFoundError:
                    missing.append(ident)
    except KafkaError as exc:
        raise _kafka_error(exc, address) from None
    finally:
        admin.close()
    described = []
    for ident in ids:
        d = found.get(ident)
        if d is None:
            if ident not in missing:
                missing.append(ident)
            continue
        described.append(
            _description(
                ident,
                str(getattr(d.state, "value", d.state)),
                int(d.producer_id),
                int(d.producer_epoch),
                int(d.transaction_timeout_ms),
                int(d.transaction_start_time_ms),
                [(tp.topic, int(tp.partition)) for tp in d.topic_partitions],
                int(d.coordinator_id),
            )
        )
    return described, missing


# ---------------------------------------------------------------------------------------------------
# list, describe


def _say(text: str) -> None:
    console.print(text, soft_wrap=True, highlight=False)


def _dash(value: object) -> object:
    return "-" if value is None else value


def _partition_text(partitions: Sequence[dict[str, Any]] | None) -> str:
    if partitions is None:
        return "-"
    return ", ".join(f"{p['topic']}/{p['partition']}" for p in partitions) or "-"


def _canonical_states(states: Sequence[str]) -> list[str]:
    by_lower = {name.lower(): name for name in STATE_NAMES}
    return list(dict.fromkeys(by_lower[s.lower()] for s in states))


@txn.command("list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(STATE_NAMES, case_sensitive=False),
    metavar="STATE",
    help=f"Only transactions in this state (repeatable: any of them): {', '.join(STATE_NAMES)}.",
)
@click.option(
    "--producer-id",
    "producer_ids",
    multiple=True,
    type=click.IntRange(min=0),
    metavar="N",
    help="Only transactions of this producer id (repeatable: any of them).",
)
@click.option(
    "--min-duration-ms",
    type=click.IntRange(min=0),
    default=None,
    metavar="MS",
    help="Only Ongoing transactions that began at least MS milliseconds ago (hanging ones).",
)
@json_option
@bootstrap_option
@_data_dir_option
@_client_config_option
def list_transactions(
    states: tuple[str, ...],
    producer_ids: tuple[int, ...],
    min_duration_ms: int | None,
    as_json: bool,
    bootstrap: str | None,
    data_dir: Path | None,
    client_settings: tuple[str, ...],
) -> None:
    """Transactional ids with their producer id and transaction state. With --data-dir also the
    producer epoch, when the current transaction began and the partitions it has written to."""
    _check_target(bootstrap, data_dir, client_settings)
    wanted = _canonical_states(states)
    data: list[dict[str, Any]]
    if data_dir is not None:
        now = _now_ms()
        data = []
        for ident, d in sorted(_read_data_dir(data_dir).items()):
            if wanted and d["state"] not in wanted:
                continue
            if producer_ids and d["producer_id"] not in producer_ids:
                continue
            if min_duration_ms is not None and (
                d["state"] != "Ongoing"
                or d["start_time_ms"] < 0
                or now - d["start_time_ms"] < min_duration_ms
            ):
                continue  # the broker's ListTransactions duration filter, the same way
            data.append(
                {
                    "transactional_id": ident,
                    "producer_id": d["producer_id"],
                    "state": d["state"],
                    "producer_epoch": d["producer_epoch"],
                    "start_time_ms": d["start_time_ms"],
                    "start_time": d["start_time"],
                    "partitions": d["partitions"],
                    "coordinator": None,
                }
            )
    else:
        data = _server_list(bootstrap, client_settings, wanted, producer_ids, min_duration_ms)

    def render() -> None:
        if not data:
            _say("no transactions" + (" match" if wanted or producer_ids or min_duration_ms else " yet"))
            return
        if data_dir is not None:
            rows = [
                [
                    t["transactional_id"],
                    t["producer_id"],
                    t["producer_epoch"],
                    t["state"],
                    _dash(t["start_time"]),
                    _partition_text(t["partitions"]),
                ]
                for t in data
            ]
            console.print(
                table(["transactional id", "producer id", "epoch", "state", "started", "partitions"], rows)
            )
        else:
            rows = [[t["transactional_id"], t["producer_id"], t["state"], t["coordinator"]] for t in data]
            console.print(table(["transactional id", "producer id", "state", "coordinator"], rows))

    emit(data, as_json, render)


@txn.command()
@click.argument("transactional_ids", metavar="TRANSACTIONAL_ID...", nargs=-1, required=True)
@json_option
@bootstrap_option
@_data_dir_option
@_client_config_option
def describe(
    transactional_ids: tuple[str, ...],
    as_json: bool,
    bootstrap: str | None,
    data_dir: Path | None,
    client_settings: tuple[str, ...],
) -> None:
    """State, producer id and epoch, timeout, start time and the partitions of each transaction.
    An unknown transactional id exits with code 4 (after printing the known ones)."""
    _check_target(bootstrap, data_dir, client_settings)
    ids = list(dict.fromkeys(transactional_ids))
    if data_dir is not None:
        where = str(data_dir)
        known = _read_data_dir(data_dir)
        described = [known[i] for i in ids if i in known]
        missing = [i for i in ids if i not in known]
    else:
        where = bootstrap_address(bootstrap)
        described, missing = _server_describe(bootstrap, client_settings, ids)

    def render() -> None:
        for d in described:
            _say(f"[bold]{escape(d['transactional_id'])}[/]  state [bold]{d['state']}[/]")
            start = f"{d['start_time']} ({d['start_time_ms']} ms)" if d["start_time"] is not None else "-"
            lines = [
                ("producer id", d["producer_id"]),
                ("producer epoch", d["producer_epoch"]),
                ("timeout", f"{d['timeout_ms']} ms"),
                ("started", start),
            ]
            if d["duration_ms"] is not None:
                lines.append(("running for", f"{d['duration_ms'] / 1000:.1f} s"))
            if d["coordinator"] is not None:
                lines.append(("coordinator", f"broker {d['coordinator']}"))
            for name, value in lines:
                _say(f"  {name + ':':<16}{escape(str(value))}")
            if d["partitions"]:
                console.print(
                    table(["topic", "partition"], [[p["topic"], p["partition"]] for p in d["partitions"]])
                )
            else:
                _say("  no partitions in the transaction")

    if described:
        emit(described if len(described) > 1 else described[0], as_json, render)
    if len(missing) == 1:
        raise _unknown_txn(missing[0], where)
    if missing:
        raise CliError(
            f"transactional ids {', '.join(repr(i) for i in missing)} do not exist on {where}",
            hint="`riel txn list` lists the transactional ids",
            exit_code=EXIT_NOT_FOUND,
        )
