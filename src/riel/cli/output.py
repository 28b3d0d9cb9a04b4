"""How CLI commands talk to people and scripts: rich tables on a terminal, ``--json`` for scripts,
errors that say what happened and what to do, and exit codes scripts can branch on."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any, Final

import click
from rich.console import Console
from rich.table import Table

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # the command ran and found a problem (verify mismatch, produce errors)
EXIT_USAGE: Final = 2  # bad arguments, or a data directory in use
EXIT_UNREACHABLE: Final = 3  # no server answered at the bootstrap address
EXIT_NOT_FOUND: Final = 4  # unknown topic or group

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


class CliError(click.ClickException):
    """An error for the user: ``message`` says what happened, ``hint`` what to do about it."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.hint = hint
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance too

    def show(self, file: IO[Any] | None = None) -> None:
        # soft_wrap: one line per message even in a pipe, so scripts can grep it
        err_console.print(
            f"[bold red]riel: error:[/] {self.message}", markup=True, highlight=False, soft_wrap=True
        )
        if self.hint:
            err_console.print(f"[yellow]hint:[/] {self.hint}", markup=True, highlight=False, soft_wrap=True)


def print_json(data: object) -> None:
    """One JSON document on stdout (bytes become text, other unknown types ``str``)."""

    def fallback(value: object) -> object:
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return str(value)

    sys.stdout.write(json.dumps(data, indent=2, default=fallback) + "\n")


def emit(data: object, as_json: bool, render: Callable[[], None]) -> None:
    """``data`` as JSON with ``--json``, else whatever ``render`` prints for people."""
    if as_json:
        print_json(data)
    else:
        render()


def table(columns: Sequence[str], rows: Sequence[Sequence[object]], *, title: str | None = None) -> Table:
    """A rich table; numeric columns (by their first row) are right-aligned."""
    result = Table(title=title, header_style="bold", show_edge=False, pad_edge=False)
    first = rows[0] if rows else ()
    for i, name in enumerate(columns):
        numeric = i < len(first) and isinstance(first[i], int | float)
        result.add_column(name, justify="right" if numeric else "left")
    for row in rows:
        result.add_row(*("" if cell is None else str(cell) for cell in row))
    return result
