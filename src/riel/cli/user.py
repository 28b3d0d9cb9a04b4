"""``riel user add/list/delete``: SASL/SCRAM users.

By default the command edits ``credentials.json`` in the data directory (``--data-dir``, or
``RIEL_DATA_DIR``), which is allowed while a server runs: the server re-reads the file when it changes,
so a new user can log in at once. With ``--bootstrap`` it asks a running broker instead, through
AlterUserScramCredentials / DescribeUserScramCredentials (confluent-kafka's AdminClient), which also
works against Apache Kafka. Passwords never reach the disk: only salted, hashed SCRAM credentials.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from riel.broker.sasl.scram import (
    DEFAULT_ITERATIONS,
    KAFKA_MECHANISMS,
    MAX_ITERATIONS,
    MIN_ITERATIONS,
    ScramMechanism,
    new_credential,
)
from riel.cli.output import EXIT_NOT_FOUND, EXIT_USAGE, CliError, console, emit, json_option, table
from riel.config import DEFAULT_DATA_DIR
from riel.storage.credentials import CredentialsFileError, CredentialStore, StoredCredential

MECHANISM_CHOICES = [m.mechanism_name for m in KAFKA_MECHANISMS] + ["all"]


def _data_dir_option(function: Any) -> Any:
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=DEFAULT_DATA_DIR,
        show_default=True,
        envvar="RIEL_DATA_DIR",
        help="The data directory whose users to manage (a running server picks changes up).",
    )(function)


def _bootstrap_option(function: Any) -> Any:
    return click.option(
        "--bootstrap",
        "-b",
        default=None,
        help="Manage users of a running broker over the Kafka protocol instead of a data directory.",
    )(function)


def _mechanisms(choice: str) -> tuple[ScramMechanism, ...]:
    if choice == "all":
        return KAFKA_MECHANISMS
    mechanism = ScramMechanism.by_name(choice)
    assert mechanism is not None
    return (mechanism,)


def _store(data_dir: Path, must_exist: bool) -> CredentialStore:
    if must_exist and not data_dir.is_dir():
        raise CliError(f"no data directory at {data_dir}", exit_code=EXIT_USAGE)
    return CredentialStore(data_dir)


def _admin(bootstrap: str) -> Any:
    from riel.cli.target import admin_client

    return admin_client(bootstrap)


@click.group()
def user() -> None:
    """SASL/SCRAM users (PLAIN logins are checked against the same credentials)."""


@user.command("add")
@click.argument("name")
@click.option("--password", default=None, help="The password (visible in the process list: prefer stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option(
    "--mechanism",
    type=click.Choice(MECHANISM_CHOICES),
    default="all",
    show_default=True,
    help="Which SCRAM credentials to create.",
)
@click.option(
    "--iterations",
    type=click.IntRange(MIN_ITERATIONS, MAX_ITERATIONS),
    default=DEFAULT_ITERATIONS,
    show_default=True,
    help="PBKDF2 iterations of the salted password.",
)
@_data_dir_option
@_bootstrap_option
def add(
    name: str,
    password: str | None,
    password_stdin: bool,
    mechanism: str,
    iterations: int,
    data_dir: Path,
    bootstrap: str | None,
) -> None:
    """Create user NAME, or set a new password for it."""
    if not name:
        raise CliError("the user name must not be empty", exit_code=EXIT_USAGE)
    if (password is None) == (not password_stdin):
        raise CliError("give exactly one of --password and --password-stdin", exit_code=EXIT_USAGE)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("the password must not be empty", exit_code=EXIT_USAGE)
    mechanisms = _mechanisms(mechanism)
    if bootstrap is not None:
        _add_remote(bootstrap, name, password, mechanisms, iterations)
    else:
        store = _store(data_dir, must_exist=False)
        for m in mechanisms:
            c = new_credential(m, password, iterations)
            store.upsert(
                name, StoredCredential(m.mechanism_name, c.salt, c.iterations, c.stored_key, c.server_key)
            )
    console.print(
        f"user {name!r}: {', '.join(m.mechanism_name for m in mechanisms)} ({iterations} iterations)"
    )


def _add_remote(
    bootstrap: str, name: str, password: str, mechanisms: tuple[ScramMechanism, ...], iterations: int
) -> None:
    from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, just not marked so
        ScramCredentialInfo,
        UserScramCredentialUpsertion,
    )
    from confluent_kafka.admin import ScramMechanism as CkMechanism  # type: ignore[attr-defined]

    from riel.cli.target import kafka_error

    admin = _admin(bootstrap)
    changes = [
        UserScramCredentialUpsertion(
            name, ScramCredentialInfo(CkMechanism[m.name], iterations), password.encode()
        )
        for m in mechanisms
    ]
    for future in admin.alter_user_scram_credentials(changes).values():
        try:
            future.result()
        except Exception as exc:
            raise kafka_error(exc, bootstrap=bootstrap) from None


@user.command("list")
@_data_dir_option
@_bootstrap_option
@json_option
def list_(data_dir: Path, bootstrap: str | None, as_json: bool) -> None:
    """The users and their SCRAM mechanisms (never secrets)."""
    rows: list[dict[str, Any]] = []
    if bootstrap is not None:
        rows = _list_remote(bootstrap)
    else:
        try:
            users = _store(data_dir, must_exist=True).users()
        except CredentialsFileError as exc:
            raise CliError(str(exc)) from None
        for name, mechs in sorted(users.items()):
            rows.append(
                {
                    "user": name,
                    "credentials": [
                        {"mechanism": m, "iterations": c.iterations} for m, c in sorted(mechs.items())
                    ],
                }
            )

    def render() -> None:
        if not rows:
            console.print("no users")
            return
        cells = [
            [row["user"], ", ".join(f"{c['mechanism']} ({c['iterations']})" for c in row["credentials"])]
            for row in rows
        ]
        console.print(table(["USER", "MECHANISMS (ITERATIONS)"], cells))

    emit(rows, as_json, render)


def _list_remote(bootstrap: str) -> list[dict[str, Any]]:
    from riel.cli.target import kafka_error

    admin = _admin(bootstrap)
    try:
        described = admin.describe_user_scram_credentials().result()
    except Exception as exc:
        raise kafka_error(exc, bootstrap=bootstrap) from None
    rows = []
    for name, description in sorted(described.items()):
        infos = sorted(
            (
                {"mechanism": str(i.mechanism.name).replace("_", "-"), "iterations": i.iterations}
                for i in description.scram_credential_infos
            ),
            key=lambda c: str(c["mechanism"]),
        )
        rows.append({"user": name, "credentials": infos})
    return rows


@user.command("delete")
@click.argument("name")
@click.option(
    "--mechanism",
    type=click.Choice(MECHANISM_CHOICES),
    default="all",
    show_default=True,
    help="Which SCRAM credentials to remove.",
)
@_data_dir_option
@_bootstrap_option
def delete(name: str, mechanism: str, data_dir: Path, bootstrap: str | None) -> None:
    """Remove user NAME (its connections stay open; new logins fail)."""
    if bootstrap is not None:
        _delete_remote(bootstrap, name, mechanism)
    else:
        store = _store(data_dir, must_exist=True)
        removed = store.delete(name, None if mechanism == "all" else mechanism)
        if not removed:
            raise CliError(
                f"no user {name!r} with {mechanism} credentials in {data_dir}",
                hint="`riel user list` shows the users",
                exit_code=EXIT_NOT_FOUND,
            )
    console.print(f"deleted user {name!r} ({mechanism})")


def _delete_remote(bootstrap: str, name: str, mechanism: str) -> None:
    from confluent_kafka.admin import ScramMechanism as CkMechanism  # type: ignore[attr-defined]
    from confluent_kafka.admin import UserScramCredentialDeletion  # type: ignore[attr-defined]

    from riel.cli.target import kafka_error

    admin = _admin(bootstrap)
    wanted = _mechanisms(mechanism)
    if mechanism == "all":
        existing = {
            c["mechanism"]
            for row in _list_remote(bootstrap)
            if row["user"] == name
            for c in row["credentials"]
        }
        wanted = tuple(m for m in wanted if m.mechanism_name in existing)
        if not wanted:
            raise CliError(f"no user {name!r} on {bootstrap}", exit_code=EXIT_NOT_FOUND)
    changes = [UserScramCredentialDeletion(name, CkMechanism[m.name]) for m in wanted]
    for future in admin.alter_user_scram_credentials(changes).values():
        try:
            future.result()
        except Exception as exc:
            raise kafka_error(exc, bootstrap=bootstrap) from None
