"""What every example shares: where the event log lives.

Each example runs embedded by default (``riel.open``: the log lives inside the example's own process, on
a throw-away data directory), or against a running server with ``--server HOST:PORT``
(``riel.connect``: start one with ``riel serve``). The example code itself is the same either way: it
only sees an ``EventLog``.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import riel


def parse_args(
    description: str,
    argv: list[str] | None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--server", metavar="HOST:PORT", help="use a running `riel serve` (riel.connect)")
    where.add_argument(
        "--data-dir",
        metavar="DIR",
        help="embedded log on this directory (riel.open); ':memory:' for an in-memory one "
        "(default: a fresh temporary directory, removed afterwards)",
    )
    if add_arguments is not None:
        add_arguments(parser)
    return parser.parse_args(argv)


@contextmanager
def open_log(args: argparse.Namespace, **settings: object) -> Iterator[riel.EventLog]:
    """The event log the command line asked for; closed (and a temporary directory removed) at exit."""
    if args.server:
        with riel.connect(args.server, **settings) as log:
            yield log
    elif args.data_dir:
        with riel.open(args.data_dir, **settings) as log:
            yield log
    else:
        with (
            tempfile.TemporaryDirectory(prefix="riel-example-") as data_dir,
            riel.open(data_dir, **settings) as log,
        ):
            yield log


def unique(name: str) -> str:
    """``name`` plus a short random suffix, so that rerunning an example against the same server or data
    directory starts from fresh topics and groups instead of last run's."""
    return f"{name}-{secrets.token_hex(3)}"
